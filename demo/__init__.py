"""Set-up of the demo and test databases, and the deterministic demo data generator."""
