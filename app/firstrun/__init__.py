"""First run: the host checks made before a machine is created, and their fixes."""
