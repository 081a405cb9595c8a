"""Property-based tests: generated ASTs print and parse back to themselves, and no input,
however mangled, makes the parser raise or report an internal error.

The strategies generate ASTs already in the builder's normal form (option words and stage
options in canonical order, no keyword used as a name, quantize's precision spelled like one),
so ``parse(format_recipe(tree))`` must give ``tree`` back up to spans.
"""

from __future__ import annotations

import re
from typing import Any

from corpus import example_recipes, identity_cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recipe_lang import ast
from recipe_lang.diagnostics import Span, render_all
from recipe_lang.grammar import KEYWORDS
from recipe_lang.parser import parse
from recipe_lang.printer import format_recipe
from recipe_lang.words import OPTION_ORDER, PRECISION, WORD_ORDER

# Deterministic and fast: no example database, derandomized, a fixed budget per test.
PROFILE = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
S = Span(line=1, column=1, end_line=1, end_column=1)

# ---- leaves ---------------------------------------------------------------------------------

_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_REST = _FIRST + "0123456789"
names = st.builds(
    lambda a, b: a + b, st.sampled_from(_FIRST), st.text(alphabet=_REST, max_size=6)
).filter(lambda n: n not in KEYWORDS)
dotted = st.lists(names, min_size=2, max_size=3).map(".".join)
_sign = st.sampled_from(["", "", "+", "-"])
_digits = st.integers(0, 9999).map(str)
# `12`, `1.`, `1.5`, `.5`: every decimal form the lexer accepts.
_decimal = st.one_of(
    _digits,
    st.builds(lambda a, b: f"{a}.{b}", _digits, st.sampled_from(["", "0", "5", "25", "125"])),
    st.builds(lambda b: f".{b}", st.sampled_from(["0", "5", "25", "125"])),
)
_exponent = st.sampled_from(["", "", "", "e3", "E-4", "e+2", "e0"])
number_text = st.builds(lambda s, d, e: s + d + e, _sign, _decimal, _exponent)
percent_text = st.builds(lambda s, d: f"{s}{d}%", _sign, _decimal)
size_text = st.builds(lambda s, d, u: s + d + u, _sign, _decimal, st.sampled_from("KMGkmg"))
_SUFFIX = {"k": 1e3, "m": 1e6, "g": 1e9}
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
idents = names.map(lambda n: ast.Ident(span=S, value=n))
precisions = st.sampled_from(["int8", "uint8", "int4", "fp16", "bf16", "float32"])
quantize_subjects = names.filter(lambda n: not PRECISION.match(n))


def number(text: str) -> ast.Number:
    return ast.Number(span=S, value=float(text), text=text)


def percent(text: str) -> ast.Percent:
    return ast.Percent(span=S, value=float(text[:-1]), text=text)


def size(text: str) -> ast.Size:
    return ast.Size(span=S, value=float(text[:-1]) * _SUFFIX[text[-1].lower()], text=text)


nums = st.one_of(
    number_text.map(number),
    percent_text.map(percent),
    size_text.map(size),
    names.map(lambda n: ast.Ref(span=S, name=n)),
)
strings = texts.map(lambda t: ast.String(span=S, value=t))
number_lists = st.lists(nums, max_size=4).map(lambda xs: ast.NumberList(span=S, items=xs))
scalar_values = st.one_of(
    nums,
    strings,
    st.one_of(names, dotted).map(lambda n: ast.Name(span=S, value=n)),
    number_lists,
)


@st.composite
def calls(draw: Any, depth: int = 2) -> ast.Call:
    factory = draw(st.booleans())
    callee = draw(texts if factory else st.one_of(names, dotted))
    inner = scalar_values if depth <= 0 else st.one_of(scalar_values, calls(depth - 1))
    args = draw(st.lists(inner, max_size=3))
    kw_names = draw(st.lists(names, max_size=3, unique=True))
    kwargs = [ast.KeywordArg(span=S, name=k, value=draw(inner)) for k in kw_names]
    return ast.Call(span=S, callee=callee, factory=factory, args=args, kwargs=kwargs)


values = st.one_of(scalar_values, calls())

# ---- declarations ---------------------------------------------------------------------------

decls = st.one_of(
    strings.map(lambda s: ast.RecipeDecl(span=S, name=s)),
    st.builds(lambda n, v: ast.ParamDecl(span=S, name=n, value=v), idents, values),
    st.builds(lambda n, v: ast.SetDecl(span=S, key=n, value=v), idents, values),
    st.builds(lambda n, c: ast.DataDecl(span=S, name=n, call=c), st.none() | idents, calls()),
    st.builds(
        lambda n, c, w: ast.ModelDecl(span=S, name=n, call=c, weights=w),
        idents,
        calls(),
        st.none() | strings,
    ),
)

# ---- stage parts ----------------------------------------------------------------------------

durations = st.builds(lambda c, u: ast.Duration(span=S, count=c, unit=u), nums, idents)
teachers = st.one_of(names.map(lambda n: ast.TeacherName(span=S, name=n)), calls(1))
option_names = st.one_of(st.sampled_from(sorted(OPTION_ORDER)), names)


def _options_sorted(options: list[ast.Option]) -> list[ast.Option]:
    return sorted(options, key=lambda o: OPTION_ORDER.get(o.name.value, len(OPTION_ORDER)))


options = st.lists(
    st.builds(
        lambda n, v: ast.Option(span=S, name=ast.Ident(span=S, value=n), value=v),
        option_names,
        nums,
    ),
    max_size=3,
).map(_options_sorted)
modifiers = st.one_of(
    st.builds(lambda t, o: ast.DistillModifier(span=S, teacher=t, options=o), teachers, options),
    st.builds(
        lambda n, v, u: ast.ValueModifier(span=S, name=n, value=v, unit=u),
        idents,
        nums,
        st.none() | idents,
    ),
    st.builds(lambda n, c: ast.CallModifier(span=S, name=n, call=c), idents, calls(1)),
    st.builds(
        lambda n, w, b: ast.WordModifier(span=S, name=n, word=w, by=b),
        idents,
        idents,
        st.none() | idents,
    ),
)
modifier_lists = st.lists(modifiers, min_size=1, max_size=3)
words = st.lists(
    st.one_of(st.sampled_from(sorted(WORD_ORDER)), names).map(lambda w: ast.Ident(span=S, value=w)),
    max_size=3,
).map(lambda ws: sorted(ws, key=lambda w: WORD_ORDER.get(w.value, len(WORD_ORDER))))
glob_part = st.text(alphabet=_REST + "*?[]", min_size=1, max_size=6).filter(
    lambda g: g not in KEYWORDS
)
scopes = st.one_of(
    st.lists(glob_part, min_size=1, max_size=3).map(
        lambda ps: ast.Scope(span=S, pattern=".".join(ps))
    ),
    texts.map(lambda t: ast.Scope(span=S, pattern=t, quoted=True)),
)
scope_lists = st.lists(scopes, max_size=3)
subjects = st.none() | idents


@st.composite
def recovery(draw: Any) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"modifiers": draw(modifier_lists), "duration": draw(durations)}
    return {"modifiers": [], "duration": None}


gradual_clauses = st.builds(
    lambda o, f, e, c: ast.Gradual(span=S, over=o, start=f, every=e, curve=c),
    durations,
    st.none() | nums,
    st.none() | durations,
    st.none() | idents,
)


@st.composite
def prune_stages(draw: Any) -> ast.PruneStage:
    amount: dict[str, Any]
    which = draw(st.sampled_from(["amount", "budget", "pattern"]))
    if which == "amount":
        amount = {"amount": draw(nums)}
    elif which == "budget":
        amount = {"budget": ast.Budget(span=S, value=draw(nums), unit=draw(idents))}
    else:
        n, m = draw(st.integers(0, 99)), draw(st.integers(0, 99))
        amount = {"pattern": ast.NMPattern(span=S, n=n, m=m)}
    gradual = draw(st.none() | gradual_clauses)
    training = draw(recovery())
    if gradual is not None and draw(st.booleans()):  # `with MODS` and no duration of its own
        training = {"modifiers": draw(modifier_lists), "duration": None}
    return ast.PruneStage(
        span=S,
        subject=draw(subjects),
        words=draw(words),
        criterion=draw(st.none() | idents),
        include=draw(scope_lists),
        exclude=draw(scope_lists),
        gradual=gradual,
        **amount,
        **training,
    )


@st.composite
def quantize_stages(draw: Any) -> ast.QuantizeStage:
    subject = draw(st.none() | quantize_subjects.map(lambda n: ast.Ident(span=S, value=n)))
    calibrate = draw(
        st.none()
        | st.builds(lambda c, u: ast.Calibrate(span=S, count=c, unit=u), nums, st.none() | idents)
    )
    return ast.QuantizeStage(
        span=S,
        subject=subject,
        precision=ast.Ident(span=S, value=draw(precisions)),
        words=draw(words),
        calibrate=calibrate,
        **draw(recovery()),
    )


simple_stages = st.one_of(
    st.builds(
        lambda v, s, d, m: ast.TrainStage(span=S, verb=v, subject=s, duration=d, modifiers=m),
        st.sampled_from(["train", "finetune"]),
        subjects,
        durations,
        st.just([]) | modifier_lists,
    ),
    st.builds(
        lambda s, t, o, d, m: ast.DistillStage(
            span=S, subject=s, teacher=t, options=o, duration=d, modifiers=m
        ),
        subjects,
        teachers,
        options,
        st.none() | durations,
        st.just([]) | modifier_lists,
    ),
    st.builds(lambda s, n: ast.SnapshotStage(span=S, subject=s, name=n), subjects, idents),
    prune_stages(),
    st.builds(
        lambda s, t, i, e, r: ast.ReplaceStage(
            span=S, subject=s, target=t, include=i, exclude=e, replacement=r
        ),
        subjects,
        idents,
        scope_lists,
        scope_lists,
        st.one_of(idents, calls(1)),
    ),
    quantize_stages(),
    subjects.map(lambda s: ast.EvaluateStage(span=S, subject=s)),
    st.builds(
        lambda s, f, p: ast.ExportStage(span=S, subject=s, format=f, path=p),
        subjects,
        idents,
        strings,
    ),
)
stages = st.recursive(
    simple_stages,
    lambda inner: st.builds(
        lambda c, body: ast.RepeatStage(span=S, count=c, stages=body),
        nums,
        st.lists(inner, min_size=1, max_size=3),
    ),
    max_leaves=6,
)
recipes = st.builds(
    lambda d, s: ast.Recipe(span=S, decls=d, stages=s),
    st.lists(decls, max_size=5),
    st.lists(stages, max_size=5),
)


@settings(PROFILE, max_examples=120)
@given(recipes)
def test_print_then_parse_gives_the_tree_back(recipe: ast.Recipe) -> None:
    text = format_recipe(recipe)
    result = parse(text)
    assert result.ok, (text, [d.message for d in result.diagnostics])
    assert result.recipe is not None
    assert ast.strip_spans(result.recipe) == ast.strip_spans(recipe), text
    assert format_recipe(result.recipe) == text


# ---- mutations of valid recipes -------------------------------------------------------------

SEEDS = [p.read_text(encoding="utf-8") for p in example_recipes()] + [
    s for _, s in identity_cases()
]
TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|\S+')
JUNK = st.one_of(
    st.text(max_size=4),
    st.sampled_from(
        [
            "then",
            "{",
            "}",
            "(",
            ")",
            ",",
            "=",
            "%",
            "$",
            '"',
            "#",
            "\n",
            "with",
            "for",
            "50%",
            "prune",
            "model",
            "repeat 2 {",
            "\\",
            "é",
            "\u2028",
            "\x00",
            "\r",
            "𝔘",
        ]
    ),
)


@st.composite
def mutated(draw: Any) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["delete", "insert", "swap", "truncate", "tokens"]))
        n = len(text)
        i = draw(st.integers(0, n))
        if how == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 8)) :]
        elif how == "insert":
            text = text[:i] + draw(JUNK) + text[i:]
        elif how == "truncate":
            text = text[:i]
        elif how == "swap" and n > 1:
            j = draw(st.integers(0, n - 1))
            chars = list(text)
            chars[min(i, n - 1)], chars[j] = chars[j], chars[min(i, n - 1)]
            text = "".join(chars)
        else:  # swap, drop or duplicate whole tokens
            toks = TOKEN.findall(text)
            if len(toks) > 1:
                a, b = draw(st.integers(0, len(toks) - 1)), draw(st.integers(0, len(toks) - 1))
                op = draw(st.sampled_from(["swap", "drop", "dup"]))
                if op == "swap":
                    toks[a], toks[b] = toks[b], toks[a]
                elif op == "drop":
                    del toks[a]
                else:
                    toks.insert(b, toks[a])
                text = " ".join(toks)
    return text


@PROFILE
@given(mutated())
def test_mangled_input_gives_diagnostics_never_an_exception(source: str) -> None:
    result = parse(source, "m.kdr")
    assert not any(d.code == "KDR999" for d in result.diagnostics), result.diagnostics
    if result.recipe is None:
        assert any(d.is_error for d in result.diagnostics)
    for d in result.diagnostics:
        assert d.code == "KDR001" and d.span is not None
        assert 1 <= d.span.line <= source.count("\n") + 1
    rendered = render_all(result.diagnostics, {"m.kdr": source})
    assert rendered.count(": error[KDR001]: ") == len(result.diagnostics)
    positions = [(d.span.line, d.span.column) for d in result.diagnostics if d.span]
    assert positions == sorted(positions)
    if result.ok and result.recipe is not None:
        # Whatever parses cleanly formats to text that means the same.
        text = format_recipe(result.recipe)
        again = parse(text)
        assert again.ok and again.recipe is not None, text
        assert ast.same_tree(again.recipe, result.recipe, comments=False), text


@PROFILE
@given(st.text(max_size=60))
def test_arbitrary_text_never_raises(source: str) -> None:
    result = parse(source)
    assert not any(d.code == "KDR999" for d in result.diagnostics)
    assert result.recipe is not None or result.diagnostics
