"""The HTTP side: category feeds for feed readers, the index page, health and metrics."""
