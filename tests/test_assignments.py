"""The course assignments (notebooks/assignments) through nbgrader's whole pipeline, on the CPU.

In a temporary copy of the course directory: generate the student versions, then
autograde three submissions of every assignment: the instructor's solution (full
marks), the untouched student version (zero: no test passes vacuously) and an
intentionally wrong implementation (loses the points of the part it breaks).
The repository is never written to.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from mtlkit import grading

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "notebooks" / "assignments"
ASSIGNMENTS = ["pcgrad", "uncertainty", "cross_stitch", "tag_affinity"]

# One intentionally wrong implementation per assignment, put into the otherwise correct
# solution: answer cell -> code, and the graded cells it must lose (all others keep their points).
WRONG = {
    "pcgrad": ({"pcgrad-project": '''
def project_conflicting(g_i, g_j):
    dot = g_i @ g_j
    if dot >= 0 or g_i @ g_i == 0:
        return g_i.clone()
    return g_i - dot / (g_i @ g_i) * g_i   # projects onto the wrong vector (g_i instead of g_j)
'''}, {"pcgrad-project-visible", "pcgrad-project-hidden", "pcgrad-aggregate-visible", "pcgrad-aggregate-hidden"}),
    "uncertainty": ({"uncertainty-objective": '''
def uncertainty_objective(losses, log_vars):
    return (0.5 * torch.exp(log_vars) * losses + 0.5 * log_vars).sum()   # wrong sign in the exponent
'''}, {"uncertainty-objective-visible", "uncertainty-objective-hidden", "uncertainty-fit-visible",
       "uncertainty-fit-hidden"}),
    "cross_stitch": ({"cross-stitch-unit": '''
class CrossStitch(nn.Module):
    def __init__(self, num_tasks, self_weight=0.9):
        super().__init__()
        other = (1.0 - self_weight) / (num_tasks - 1) if num_tasks > 1 else 0.0
        alpha = torch.full((num_tasks, num_tasks), other)
        alpha.fill_diagonal_(self_weight if num_tasks > 1 else 1.0)
        self.alpha = nn.Parameter(alpha)

    def forward(self, features):
        return list(features)   # no mixing: alpha is never used
'''}, {"cross-stitch-forward-visible", "cross-stitch-forward-hidden", "cross-stitch-net-hidden"}),
    "tag_affinity": ({"tag-affinity": '''
def tag_affinity(loss_fn, theta, lr):
    theta = theta.detach().requires_grad_()
    losses = loss_fn(theta)
    rows = []
    for i in range(losses.shape[0]):
        (grad,) = torch.autograd.grad(losses[i], theta, retain_graph=True)
        with torch.no_grad():
            rows.append(1 - loss_fn(theta - lr * grad) / losses)
    return torch.stack(rows).T.detach()   # transposed: rows and columns swapped
'''}, {"tag-affinity-visible", "tag-affinity-hidden", "tag-training-hidden"}),
}

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"

# nbgrader's gradebook code trips SQLAlchemy's session warnings; they say nothing about the assignments.
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _source(name: str) -> nbformat.NotebookNode:
    return nbformat.read(COURSE / "source" / name / f"{name}.ipynb", as_version=4)


def _region_lines(text: str, begin: str, end: str) -> list[str]:
    """The non-blank lines strictly between begin and end markers."""
    out, inside = [], False
    for line in text.splitlines():
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside and line.strip():
            out.append(line.strip())
    return out


def _lines_outside_regions(text: str) -> set[str]:
    """The non-blank lines of a cell outside every solution and hidden-test region."""
    out, inside = set(), False
    for line in text.splitlines():
        if "### BEGIN" in line:
            inside = True
        elif "### END" in line:
            inside = False
        elif not inside and line.strip():
            out.add(line.strip())
    return out


def _exec_solutions(name: str) -> dict:
    """The namespace after running the source notebook's set-up and answer cells in this process."""
    ns: dict = {}
    for cell in _source(name).cells:
        meta = _meta(cell)
        if cell.cell_type == "code" and (meta.get("solution") or (meta.get("locked") and not meta.get("grade"))):
            exec(compile(cell.source, f"<{name}:{meta['grade_id']}>", "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A graded copy of the course: {"root", "scores": {(assignment, student): {grade_id: (score, max)}}}."""
    from nbgrader import api as nbapi
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    root = tmp_path_factory.mktemp("course")
    shutil.copy(COURSE / "nbgrader_config.py", root)
    shutil.copytree(COURSE / "source", root / "source")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.root = str(root)

    with pytest.MonkeyPatch.context() as mp:
        # nbgrader runs the `alembic` console script from PATH on every gradebook it opens;
        # find it in this interpreter's environment, and ask it once.
        mp.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        mp.setattr(nbapi, "get_alembic_version", functools.cache(nbapi.get_alembic_version))
        mp.setenv("OMP_NUM_THREADS", "1")
        grader = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        for name in ASSIGNMENTS:
            result = grader.generate_assignment(name)
            assert result["success"], result.get("error", result.get("log"))
            _submit(root, name, "solution", _source(name))
            student = nbformat.read(root / "release" / name / f"{name}.ipynb", as_version=4)
            _submit(root, name, "blank", student)
            _submit(root, name, "wrong", _replace_answers(_source(name), WRONG[name][0]))
        for name in ASSIGNMENTS:
            result = grader.autograde(name, "*")
            assert result["success"], result.get("error", result.get("log"))

    scores = {}
    with nbapi.Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for name in ASSIGNMENTS:
            for student in ("solution", "blank", "wrong"):
                nb = gb.find_submission_notebook(name, name, student)
                scores[name, student] = {g.name: (g.score, g.max_score) for g in nb.grades}
    return {"root": root, "scores": scores}


def _submit(root: Path, name: str, student: str, nb: nbformat.NotebookNode) -> None:
    folder = root / "submitted" / student / name
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{name}.ipynb")


def _replace_answers(nb: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        grade_id = _meta(cell).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id].strip("\n")
    assert {_meta(c).get("grade_id") for c in nb.cells} >= set(answers), "a wrong answer names no cell"
    return nb


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_source_notebook_is_built_from_its_text(name):
    spec = importlib.util.spec_from_file_location("assignment_build", COURSE / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    built, committed = build.build(name), _source(name)
    assert [(c.cell_type, c.source, c.metadata) for c in built.cells] == \
           [(c.cell_type, c.source, c.metadata) for c in committed.cells], \
        f"source/{name}/{name}.ipynb is out of date: run python notebooks/assignments/build.py {name}"
    assert not any(c.get("outputs") or c.get("execution_count") for c in committed.cells), "committed with outputs"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_every_answer_has_visible_and_hidden_graded_tests(name):
    sections: list[tuple[str, list]] = []  # each answer cell, with the graded cells up to the next answer
    for cell in _source(name).cells:
        meta = _meta(cell)
        if meta.get("solution"):
            assert BEGIN_SOLUTION in cell.source and END_SOLUTION in cell.source, meta["grade_id"]
            sections.append((meta["grade_id"], []))
        elif meta.get("grade"):
            assert sections and meta["locked"] and meta["points"] >= 1, meta["grade_id"]
            sections[-1][1].append(cell)
    assert len(sections) >= 2
    for answer, graded in sections:
        hidden = [c for c in graded if "### BEGIN HIDDEN TESTS" in c.source and "### END HIDDEN TESTS" in c.source]
        visible = [c for c in graded if "HIDDEN TESTS" not in c.source]
        assert hidden and visible, f"{answer}: needs visible and hidden graded tests"
        assert sum(_meta(c)["points"] for c in hidden) >= sum(_meta(c)["points"] for c in visible), answer


# ---------------------------------------------------------------- the nbgrader pipeline


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_student_version_has_no_solutions_and_no_hidden_tests(course, name):
    source = _source(name)
    released = nbformat.read(course["root"] / "release" / name / f"{name}.ipynb", as_version=4)
    text = "\n".join(c.source for c in released.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    solution = {line for c in source.cells for line in _region_lines(c.source, BEGIN_SOLUTION, END_SOLUTION)}
    hidden = {line for c in source.cells
              for line in _region_lines(c.source, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")}
    outside = {line for c in source.cells for line in _lines_outside_regions(c.source)}
    solution, hidden = solution - outside, hidden - outside  # lines the source also has outside the regions
    released_lines = {line.strip() for line in text.splitlines()}
    assert solution and not (solution & released_lines), f"solution lines left: {solution & released_lines}"
    assert hidden and not (hidden & released_lines), f"hidden-test lines left: {hidden & released_lines}"
    stubs = [c.source for c in released.cells if _meta(c).get("solution")]
    assert stubs and all("raise NotImplementedError()" in s for s in stubs)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_gets_full_marks(course, name):
    grades = course["scores"][name, "solution"]
    lost = {gid: g for gid, g in grades.items() if g[0] != g[1]}
    assert grades and not lost, f"the solution loses points in {lost}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_untouched_student_version_scores_zero(course, name):
    grades = course["scores"][name, "blank"]
    assert grades and all(max_score > 0 for _, max_score in grades.values())
    passed = {gid: g for gid, g in grades.items() if g[0] != 0}
    assert not passed, f"tests pass on the unimplemented stubs (vacuous): {passed}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_wrong_implementation_loses_the_points_of_what_it_breaks(course, name):
    grades, broken = course["scores"][name, "wrong"], WRONG[name][1]
    assert broken <= set(grades)
    kept_points = {gid: g for gid, g in grades.items() if gid in broken and g[0] != 0}
    assert not kept_points, f"a wrong implementation keeps points in {kept_points}"
    lost_elsewhere = {gid: g for gid, g in grades.items() if gid not in broken and g[0] != g[1]}
    assert not lost_elsewhere, f"parts the wrong code does not touch lose points: {lost_elsewhere}"


def test_course_scores_add_up(course):
    total = {name: sum(m for _, m in course["scores"][name, "solution"].values()) for name in ASSIGNMENTS}
    assert all(points >= 7 for points in total.values()), total


# ---------------------------------------------------------------- student checks (mtlkit.grading)


def test_checks_pass_on_the_solutions(capsys):
    for name, checks in [("pcgrad", [("check_pcgrad_projection", "project_conflicting"), ("check_pcgrad", "pcgrad")]),
                         ("uncertainty", [("check_uncertainty_objective", "uncertainty_objective"),
                                          ("check_optimal_log_vars", "optimal_log_vars"),
                                          ("check_fit_log_vars", "fit_log_vars")]),
                         ("cross_stitch", [("check_cross_stitch_init", "CrossStitch"),
                                           ("check_cross_stitch_forward", "CrossStitch")]),
                         ("tag_affinity", [("check_tag_affinity", "tag_affinity"),
                                           ("check_best_grouping", "best_grouping")])]:
        ns = _exec_solutions(name)
        for check, target in checks:
            getattr(grading, check)(ns[target])
    assert capsys.readouterr().out.count("✓") == 9


def _wrong(name: str, answer: str) -> dict:
    ns = _exec_solutions(name)
    exec(WRONG[name][0][answer], ns)
    return ns


def test_pcgrad_feedback_names_the_property_and_the_input():
    def summed(G, order=None):
        return G.sum(dim=0)
    with pytest.raises(AssertionError, match=re.escape(
            "PCGrad: for G=[[1, 0], [-3, 1]] your update d=[-2, 1] has inner product -2 with task 0's gradient")):
        grading.check_pcgrad(summed)
    with pytest.raises(AssertionError, match="must be orthogonal to g_j"):
        grading.check_pcgrad_projection(_wrong("pcgrad", "pcgrad-project")["project_conflicting"])


def test_pcgrad_feedback_spots_projection_onto_projected_gradients():
    def sequential(G, order=None):
        G = G.clone()
        for i in range(G.shape[0]):
            for j in order if order is not None else range(G.shape[0]):
                dot = G[i] @ G[j]
                if j != i and dot < 0:
                    G[i] = G[i] - dot / (G[j] @ G[j]) * G[j]
        return G.sum(dim=0)
    with pytest.raises(AssertionError, match=re.escape(
            "PCGrad: for G=[[1, 0], [-1, 1]] your update d=[-0.5, 1.5] has inner product -0.5 with task 0's gradient")):
        grading.check_pcgrad(sequential)

    def sequential_three_tasks_only(G, order=None):
        return (sequential if G.shape[0] > 2 else _exec_solutions("pcgrad")["pcgrad"])(G, order)
    with pytest.raises(AssertionError, match="always project on the ORIGINAL g_j"):
        grading.check_pcgrad(sequential_three_tasks_only)


def test_feedback_on_other_mistakes():
    def stub(*args, **kwargs):
        raise NotImplementedError()
    with pytest.raises(AssertionError, match="not implemented yet"):
        grading.check_uncertainty_objective(stub)
    with pytest.raises(AssertionError, match=r"for losses=\[2\], log_vars=\[0.6931\] your objective gave 2.347; expected 0.8466"):
        grading.check_uncertainty_objective(_wrong("uncertainty", "uncertainty-objective")["uncertainty_objective"])
    with pytest.raises(AssertionError, match="mixes ALL task features"):
        grading.check_cross_stitch_forward(_wrong("cross_stitch", "cross-stitch-unit")["CrossStitch"])
    with pytest.raises(AssertionError, match="transpose of the expected matrix"):
        grading.check_tag_affinity(_wrong("tag_affinity", "tag-affinity")["tag_affinity"])

    def in_place(G, order=None):
        G[1] = 0.0
        return G.sum(dim=0)
    with pytest.raises(AssertionError, match="changed its input G in place"):
        grading.check_pcgrad(in_place)


def test_no_reference_check():
    from mtlkit.balancers import PCGrad  # noqa: F401 (named by the function below)

    def borrowed(G, order=None):
        return PCGrad().aggregate(G)
    with pytest.raises(AssertionError, match="uses PCGrad from mtlkit"):
        grading.check_no_reference(borrowed, "PCGrad", "balancers")
    grading.check_no_reference(_exec_solutions("pcgrad")["pcgrad"], "PCGrad", "balancers")


# ---------------------------------------------------------------- solutions agree with mtlkit's references


def test_pcgrad_solution_matches_mtlkit_reference():
    from mtlkit.balancers import BALANCERS
    if "pcgrad" not in BALANCERS:
        pytest.skip("mtlkit.balancers has no pcgrad yet")
    pcgrad = _exec_solutions("pcgrad")["pcgrad"]
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):  # with two tasks the projection order does not matter
        G = torch.randn(2, 6, generator=gen)
        torch.testing.assert_close(pcgrad(G), BALANCERS["pcgrad"]().aggregate(G), atol=1e-5, rtol=1e-5)


def test_uncertainty_solution_matches_mtlkit_reference():
    from mtlkit.balancers import BALANCERS
    if "uncertainty" not in BALANCERS:
        pytest.skip("mtlkit.balancers has no uncertainty weighting yet")
    ns = _exec_solutions("uncertainty")
    reference = BALANCERS["uncertainty"](form="regression")
    losses = torch.tensor([0.3, 2.0, 7.0])
    reference.setup(3)
    with torch.no_grad():
        reference.log_vars.copy_(torch.tensor([0.5, -1.0, 2.0]))
    expected, _ = reference.objective(losses)
    torch.testing.assert_close(ns["uncertainty_objective"](losses, reference.log_vars.detach()), expected.detach())


def test_cross_stitch_solution_matches_mtlkit_reference():
    crosstalk = pytest.importorskip("mtlkit.models.crosstalk")
    reference = getattr(crosstalk, "CrossStitchUnit", None)
    if reference is None:
        pytest.skip("mtlkit.models.crosstalk has no CrossStitchUnit")
    ours = _exec_solutions("cross_stitch")["CrossStitch"]
    torch.testing.assert_close(ours(2).alpha, reference(2).alpha)  # 0.9 self / 0.1 other
    a, b = ours(3), reference(3)
    with torch.no_grad():
        b.alpha.copy_(torch.randn(3, 3))
        a.alpha.copy_(b.alpha)
    x = [torch.randn(2, 4, 3, 3) for _ in range(3)]
    for mine, theirs in zip(a(x), b(x)):
        torch.testing.assert_close(mine, theirs)


def test_tag_solution_matches_mtlkit_reference():
    """The assignment's tag_affinity(loss_fn, θ, lr) on a flat θ equals mtlkit's lookahead_affinity on a model.

    θ is the model's shared parameters, flattened; loss_fn(θ) puts θ back into the model
    (heads fixed, as TAG's lookahead moves only shared parameters) and returns its T losses.
    """
    from torch.func import functional_call

    from mtlkit.data.planted import planted_groups
    from mtlkit.models import HardSharing
    from mtlkit.relations import lookahead_affinity

    data, _ = planted_groups(64, (2, 2), dim=6, seed=3)
    torch.manual_seed(0)
    model = HardSharing.mlp(data.tasks, 6, (8, 4)).double()
    x, targets = data.x.double(), {n: y.double() for n, y in data.targets.items()}
    names = {id(p): n for n, p in model.named_parameters()}
    shared = model.shared_parameters()
    theta = torch.cat([p.detach().flatten() for p in shared])

    def loss_fn(flat: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(flat, [p.numel() for p in shared])
        params = {names[id(p)]: v.view_as(p) for p, v in zip(shared, pieces)}
        return model.tasks.losses(functional_call(model, params, (x,), strict=False).outputs, targets)

    ns = _exec_solutions("tag_affinity")
    for lr in (0.01, 0.2):
        expected = lookahead_affinity(model, x, targets, lr)
        assert expected.shape == (4, 4) and (expected - expected.T).abs().max() > 1e-6  # not a trivial case
        torch.testing.assert_close(ns["tag_affinity"](loss_fn, theta, lr), expected)
