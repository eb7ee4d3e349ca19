"""The config library: safe file reading, system config and soa-configs, validation, naming."""
