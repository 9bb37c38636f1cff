"""nbgrader configuration for the workbook's course assignments.

Run every nbgrader command from this folder (notebooks/assignments/): it is the
course directory. See docs/INSTRUCTORS.md for the whole workflow.
"""
c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "mtlkit"
# Grading is CPU-only and fast; a cell that runs longer than this is stuck.
c.Execute.timeout = 60
# `nbgrader zip_collect`: files in downloaded/<assignment>/archive/ are named <student>_<notebook>,
# e.g. alice_pcgrad.ipynb (the pattern sees the whole path, hence the leading .*/).
c.FileNameCollectorPlugin.named_regexp = r".*/(?P<student_id>[^/_]+)_(?P<file_id>[^/]+)$"
