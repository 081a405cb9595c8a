"""Property: any valid recipe over a tiny model that compiles also dry-runs, with no error but
a documented model-aware one (KDR500-KDR503, each with its reason)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.driver import compile_source
from runtime.run import check_plan

HEAD = (
    "model teacher = convnet(width=8)\nmodel student = convnet(width={width})\n"
    "data = mnist10k(batch_size=16, limit=64, eval_limit=64)\n"
    "train teacher for 1 step\n"
)
MODEL_AWARE = {"KDR500", "KDR501", "KDR502", "KDR503"}

percent = st.integers(min_value=5, max_value=95).map(lambda p: f"{p}%")
recovery = st.sampled_from(
    ["", " with lr 0.01 for 1 step", " with distill from teacher for 1 step"]
)
stage = st.one_of(
    st.just("train student for 1 step"),
    st.just("distill student from teacher for 1 step"),
    st.builds(
        lambda p, g, c, r, sc: f"prune student {p} {g} by {c}{sc}{r}",
        percent,
        st.sampled_from(["channels", "weights"]),
        st.sampled_from(["l1", "l2", "random"]),
        recovery,
        st.sampled_from(["", " except classifier*", " in features.*"]),
    ),
    st.builds(
        lambda p, u, r: f"prune student to {p} {u}{r}",
        st.integers(min_value=20, max_value=90).map(lambda p: f"{p}%"),
        st.sampled_from(["params", "macs"]),
        recovery,
    ),
    st.builds(
        lambda k: f"replace convs with {k}",
        st.sampled_from(["depthwise_separable", "ghost", "group(2)"]),
    ),
    st.just("evaluate student"),
)
tail = st.sampled_from(["", "quantize student int8", "quantize student int8 dynamic"])


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    width=st.sampled_from([4, 8]),
    stages=st.lists(stage, min_size=1, max_size=4),
    last=tail,
)
def test_compiled_recipes_dry_run(width: int, stages: list[str], last: str) -> None:
    pipeline = [*stages, last] if last else stages
    text = HEAD.format(width=width) + "".join(f"then {s}\n" for s in pipeline)
    result = compile_source(text)
    if result.plan is None:  # a combination the compiler refuses is not this test's concern
        assert result.has_errors
        return
    report = check_plan(result.plan)
    errors = [d for d in report.diagnostics if d.is_error]
    assert all(d.code in MODEL_AWARE and d.message for d in errors), [
        (d.code, d.message) for d in errors
    ]
    if not errors:
        assert [e.op for e in report.estimates if e.pass_id != "input"] == [
            p.op for p in result.plan.passes if p.info.graph
        ]
