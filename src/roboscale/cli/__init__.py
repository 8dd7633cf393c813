"""The `roboscale` command line."""
