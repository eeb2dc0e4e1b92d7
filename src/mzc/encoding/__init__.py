"""Encoding: the request vocabulary, the planner, rate control, the chunk pipeline and the stack writer."""
