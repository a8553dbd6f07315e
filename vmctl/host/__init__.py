"""Host access: sysfs under a root prefix, host steps, and the change journal."""
