"""pytest (nbval) runs the instructor's source notebooks here: with their solutions they execute.

What nbgrader writes next to them when an instructor runs it in this folder (student
versions, submissions, autograded copies, feedback) raises NotImplementedError or is
someone's work: never collect it. tests/test_assignments.py grades those versions in a
temporary course directory instead.
"""
collect_ignore = ["build.py", "nbgrader_config.py"]
collect_ignore_glob = ["release/*", "submitted/*", "autograded/*", "feedback/*", "downloaded/*", "nbsrc/*"]
