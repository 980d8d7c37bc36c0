"""See the package docstring of golongrl for the data flow."""
