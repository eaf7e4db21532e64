"""Closed sets shared by every layer: data types, metrics, load states."""

from __future__ import annotations

from enum import Enum, IntEnum


class DataType(IntEnum):
    """Field data types, with the numeric values of the Milvus protocol."""

    NONE = 0
    BOOL = 1
    INT8 = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    FLOAT = 10
    DOUBLE = 11
    STRING = 20
    VARCHAR = 21
    ARRAY = 22
    JSON = 23
    GEOMETRY = 24
    TIMESTAMPTZ = 26
    BINARY_VECTOR = 100
    FLOAT_VECTOR = 101
    FLOAT16_VECTOR = 102
    BFLOAT16_VECTOR = 103
    SPARSE_FLOAT_VECTOR = 104
    INT8_VECTOR = 105
    #: The protocol's type of a struct array's vector sub-field (an embedding list per row).
    _ARRAY_OF_VECTOR = 106
    #: The protocol's type of a struct array field (pymilvus shows it as ARRAY of STRUCT).
    _ARRAY_OF_STRUCT = 200
    #: The element type of a struct array field (``ARRAY`` with ``element_type=STRUCT``).
    STRUCT = 201
    UNKNOWN = 999

    def __repr__(self) -> str:
        return f"<DataType.{self.name}: {self.value}>"

    def __str__(self) -> str:
        return self.name

    @property
    def is_vector(self) -> bool:
        """True for every vector type, sparse included."""
        return self in VECTOR_TYPES

    @property
    def is_dense_vector(self) -> bool:
        """True for the vector types with a fixed ``dim`` (every vector type but sparse)."""
        return self in VECTOR_TYPES and self is not DataType.SPARSE_FLOAT_VECTOR

    @property
    def is_integer(self) -> bool:
        """True for INT8, INT16, INT32 and INT64."""
        return self in INTEGER_TYPES

    @property
    def is_numeric(self) -> bool:
        """True for the integer types, FLOAT and DOUBLE."""
        return self in INTEGER_TYPES or self in (DataType.FLOAT, DataType.DOUBLE)


INTEGER_TYPES = frozenset({DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64})
VECTOR_TYPES = frozenset(
    {
        DataType.BINARY_VECTOR,
        DataType.FLOAT_VECTOR,
        DataType.FLOAT16_VECTOR,
        DataType.BFLOAT16_VECTOR,
        DataType.SPARSE_FLOAT_VECTOR,
        DataType.INT8_VECTOR,
    }
)
#: Element types an ARRAY field may hold.
ARRAY_ELEMENT_TYPES = frozenset(
    {
        DataType.BOOL,
        DataType.INT8,
        DataType.INT16,
        DataType.INT32,
        DataType.INT64,
        DataType.FLOAT,
        DataType.DOUBLE,
        DataType.VARCHAR,
    }
)

#: Sub-field types a STRUCT element may hold: the ARRAY element types and FLOAT_VECTOR.
STRUCT_SUBFIELD_TYPES = ARRAY_ELEMENT_TYPES | {DataType.FLOAT_VECTOR}

#: numpy dtype names of the fixed-width scalar types.
NUMPY_DTYPES: dict[DataType, str] = {
    DataType.BOOL: "bool",
    DataType.INT8: "int8",
    DataType.INT16: "int16",
    DataType.INT32: "int32",
    DataType.INT64: "int64",
    DataType.FLOAT: "float32",
    DataType.DOUBLE: "float64",
    DataType.TIMESTAMPTZ: "int64",  # microseconds since the epoch, UTC
}


#: Metrics whose scores are similarities: a larger score is a closer match.
_SIMILARITIES = frozenset({"IP", "COSINE", "BM25", "MAX_SIM", "MAX_SIM_COSINE", "MAX_SIM_IP"})


def larger_is_better(metric: str) -> bool:
    """Whether a larger score is a better match under ``metric`` (a metric name such as ``"IP"``)."""
    return str(metric).upper() in _SIMILARITIES


class MetricType(str, Enum):
    """Distance metrics, by their Milvus names; a member compares equal to its name."""

    L2 = "L2"
    IP = "IP"
    COSINE = "COSINE"
    HAMMING = "HAMMING"
    JACCARD = "JACCARD"
    BM25 = "BM25"

    @property
    def larger_is_better(self) -> bool:
        """True for the similarity metrics (IP, COSINE, BM25), whose best hits score highest."""
        return larger_is_better(self.value)


class LoadState(IntEnum):
    """Load state of a collection or partition, printed as Milvus prints it."""

    NotExist = 0
    NotLoad = 1
    Loading = 2
    Loaded = 3

    def __repr__(self) -> str:
        return f"<LoadState: {self.name}>"

    def __str__(self) -> str:
        return self.name


class ConsistencyLevel(IntEnum):
    """Milvus's consistency levels, for ``consistency_level=`` and `describe_collection`.

    A collection keeps the level it was created with, but every read behaves
    as Strong: it sees each write acknowledged before it started.
    """

    Strong = 0
    Session = 1
    Bounded = 2
    Eventually = 3
    Customized = 4
