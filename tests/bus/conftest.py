"""Bus fixtures: one Kafka mock cluster per test module, and a ``bus`` parametrised over memory and Kafka so both
implementations pass the same contract tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from riskstream.bus import Bus, open_bus

PARTITIONS = 3  # not the mock's auto-create default (4), so the configured count is what the tests see
_names = itertools.count()


@pytest.fixture(scope="module")
def kafka_bus() -> Iterator[Bus]:
    bus = open_bus("kafka://mock", partitions=PARTITIONS)
    yield bus
    bus.close()


@pytest.fixture(
    params=["memory", pytest.param("kafka", marks=pytest.mark.integration)],
)
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    if request.param == "kafka":
        yield request.getfixturevalue("kafka_bus")
        return
    memory = open_bus("memory", partitions=PARTITIONS)
    yield memory
    memory.close()


@pytest.fixture
def topic() -> str:
    """A topic name no other test uses (the module's Kafka cluster is shared)."""
    return f"test.topic.{next(_names)}"
