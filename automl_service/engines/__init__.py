"""Backends: the local engine (FLAML + MLflow) and Azure Machine Learning."""

from .base import Deployer, Engine, JobState, JobStatus, Registry

__all__ = ["Deployer", "Engine", "JobState", "JobStatus", "Registry"]
