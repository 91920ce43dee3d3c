"""Fuzzing the example's HTTP API from its own OpenAPI schema (issue 11,
item 10) with schemathesis: valid and invalid requests for every operation,
sent over a real socket to ``python -m exo example``. No answer may be a 5xx;
each answer's status, content type and body must be ones the schema documents;
a body the schema forbids must be refused (4xx).

Cases per operation and mode: ``EXO_FUZZ_EXAMPLES`` (50 here; ``make
fuzz-http`` runs more). The number of cases sent is printed at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from tests.test_example import Example

EXAMPLES = int(os.environ.get("EXO_FUZZ_EXAMPLES", "50"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
SENT: dict[str, int] = {}


@pytest.fixture(scope="module")
def example() -> Iterator[Example]:
    ex = Example("--summary", "0", "--speed", "max").wait_ready()
    yield ex
    ex.stop()
    total = sum(SENT.values())
    print(
        f"\nschemathesis: {total} cases sent to the example, "
        + ", ".join(f"{k} {v}" for k, v in SENT.items())
    )


def _operations(ex: Example) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{ex.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_operation_answers_as_its_schema_says_and_never_5xx(
    example: Example, mode: GenerationMode
) -> None:
    operations = _operations(example)
    assert {op.label for op in operations} == {
        "POST /v1/orders",
        "GET /v1/orders",
        "GET /v1/orders/{order_id}",
        "DELETE /v1/orders/{order_id}",
        "GET /metrics",
        "GET /healthz",
    }
    for op in operations:
        _fuzz(example, op, mode)
    assert example.proc.poll() is None, example.err.text()


def _fuzz(example: Example, op: schemathesis.APIOperation, mode: GenerationMode) -> None:
    key = f"{op.label} ({mode.value})"
    SENT[key] = 0

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=os.environ.get("EXO_FUZZ_RANDOM") is None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )
    def run(case: schemathesis.Case) -> None:
        SENT[key] += 1
        case.call_and_validate(base_url=example.url, checks=CHECKS, timeout=10)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        # Nothing the schema forbids can be generated for it (e.g. GET /metrics has no input).
        assert mode is GenerationMode.NEGATIVE, op.label
