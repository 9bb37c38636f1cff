"""nbgrader configuration for the workbook's course assignments.

Run every nbgrader command from this folder (notebooks/assignments/): it is the
course directory. See docs/INSTRUCTORS.md for the whole workflow.
"""
c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "mtlkit"
# Grading is CPU-only and fast; a cell that runs longer than this is stuck.
c.Execute.timeout = 60
