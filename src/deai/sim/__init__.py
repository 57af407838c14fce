"""sim: scenarios (YAML descriptions of a whole network run), runs and reports."""
