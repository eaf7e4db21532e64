"""Schema functions: fields computed from other fields, at write time and at search time.

A collection's schema may define functions. Each one turns input fields
into output fields when rows are inserted or upserted (BM25: a VARCHAR field
into a SPARSE_FLOAT_VECTOR field; TEXTEMBEDDING: a VARCHAR field into a
FLOAT_VECTOR field), and turns query data into query vectors when a search
names an output field (text in, the vector that field's index searches out).

The engine calls them; clients and the wire never do. They only carry the
function definitions inside the schema and text placeholders in search
requests. A function that fails fails the whole write: a batch whose
function output cannot be computed writes nothing.

The contract is in `_base.py` (definitions, the registry, the write-time and
search-time steps) and `_analyzer.py` (text to tokens). BM25 and text
embedding register their factories next.
"""

from . import _bm25 as _bm25  # registers the BM25 factory
from . import _embedding  # noqa: F401  (registers TEXTEMBEDDING)
