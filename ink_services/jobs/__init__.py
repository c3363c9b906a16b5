"""Batch jobs through a REST API: submit, list, inspect, read output, cancel."""
