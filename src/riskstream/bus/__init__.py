"""The message bus: topics, Kafka-compatible partitioning, an in-process log and Kafka behind one interface,
versioned Avro schemas in the Schema Registry wire format, and validation that turns bad messages into dead
letters.

``open_bus("memory")`` is the embedded default; ``open_bus("kafka://mock")`` runs librdkafka's mock cluster in
this process; ``open_bus("kafka://HOST:PORT")`` connects to a real cluster.
"""

from ._base import (
    Bus,
    Consumer,
    Producer,
    Record,
    TopicPartition,
    Topics,
    murmur2,
    now_us,
    open_bus,
    partition_for,
)
from ._batch import RawBatch, TickBatch, decode_tick_columns
from ._kafka import KafkaBus, MockCluster
from ._memory import MemoryBus
from ._schemas import (
    MAGIC_BYTE,
    SCHEMAS,
    AvroCodec,
    StoreEvent,
    check_compatible,
    codec_for,
    registry_client,
    subject_for,
)
from ._validation import (
    DEADLETTER_REASONS,
    METRICS_REGISTRY,
    PositionEventValidator,
    TickValidator,
    publish_dead_letters,
)

__all__ = [
    "DEADLETTER_REASONS",
    "MAGIC_BYTE",
    "METRICS_REGISTRY",
    "SCHEMAS",
    "AvroCodec",
    "Bus",
    "Consumer",
    "KafkaBus",
    "MemoryBus",
    "MockCluster",
    "PositionEventValidator",
    "Producer",
    "RawBatch",
    "Record",
    "StoreEvent",
    "TickBatch",
    "TickValidator",
    "TopicPartition",
    "Topics",
    "check_compatible",
    "codec_for",
    "decode_tick_columns",
    "murmur2",
    "now_us",
    "open_bus",
    "partition_for",
    "publish_dead_letters",
    "registry_client",
    "subject_for",
]
