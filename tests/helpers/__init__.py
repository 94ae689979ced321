"""Helpers for the tests (not collected): `runs` (tiny configs and models, the project's commands run
in a subprocess, their logs), `videos` (tiny generated video datasets and configs reading them),
`deploy` (a trained-model stand-in for tools.predict, tools.export and tools.visualize)."""
