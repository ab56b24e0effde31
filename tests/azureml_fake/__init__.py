"""A loopback fake of the Azure ML REST surface, and the fixtures that drive the real SDK
against it."""
