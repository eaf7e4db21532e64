"""A Milvus 2.3.5 server as far as a few calls go: answers recorded from one, served on 127.0.0.1.

It records every request it gets (``calls``), answers ``GetLoadState`` with
``Loading`` a set number of times before ``Loaded`` (a real server loads in
the background), stamps writes with a timestamp as Milvus does, and answers a
``Query`` whose filter does not parse with Milvus's generic error code 65535.
"""

from __future__ import annotations

import re
from concurrent import futures
from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

SERVICE = "milvus.proto.milvus.MilvusService"
VERSION = "v2.3.5-lite"
#: The timestamp the fake stamps its first write with (later ones count up).
FIRST_WRITE_TS = 446_000_000_000_000_000
#: Rows an iterator pages through (keys 0..ITERATOR_ROWS-1), and the most one page holds.
ITERATOR_ROWS = 100
PAGE_STOP = 7
#: What Milvus 2.3.5 answered to ``query(filter="n >>> 3")``.
PARSE_ERROR = ("cannot parse expression: n >>> 3, error: line 1:4 extraneous input '>' expecting "
               "{'(', '[', EXISTS, '+', '-', '~', NOT, ...}")


class FakeMilvus:
    """Start with `start`, stop with `stop`; ``loading_polls`` is how many GetLoadState answers say Loading."""

    def __init__(self, loading_polls: int = 3) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.loading_polls = loading_polls
        self._polls = 0
        self._ts = FIRST_WRITE_TS
        self._schemas: dict[str, schema_pb2.CollectionSchema] = {}
        self._server: grpc.Server | None = None
        self.port = 0

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeMilvus:
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                self._recorded(name, fn),
                request_deserializer=getattr(milvus_pb2, req).FromString,
                response_serializer=lambda m: m.SerializeToString(),
            )
            for name, (req, fn) in self._rpcs().items()
        }
        self._server = grpc.server(futures.ThreadPoolExecutor(4))
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(None)

    def requests(self, rpc: str) -> list[Any]:
        return [m for name, m in self.calls if name == rpc]

    def _recorded(self, name: str, fn: Any) -> Any:
        def handle(msg: Any, context: Any) -> Any:
            self.calls.append((name, msg))
            return fn(msg)

        return handle

    def _rpcs(self) -> dict[str, tuple[str, Any]]:
        ok = common_pb2.Status
        return {
            "GetVersion": ("GetVersionRequest", lambda m: milvus_pb2.GetVersionResponse(status=ok(), version=VERSION)),
            "Connect": ("ConnectRequest", lambda m: milvus_pb2.ConnectResponse(status=ok(), server_info=common_pb2.ServerInfo(
                build_tags=VERSION, build_time="Fri Jan 19 14:23:10 UTC 2024", git_commit="9aceff5a6",
                go_version="go version go1.20.4 linux/amd64", deploy_mode="STANDALONE"))),
            "CreateCollection": ("CreateCollectionRequest", self._create),
            "DescribeCollection": ("DescribeCollectionRequest", self._describe),
            "CreateIndex": ("CreateIndexRequest", lambda m: common_pb2.Status()),
            "LoadCollection": ("LoadCollectionRequest", lambda m: self._load()),
            "LoadPartitions": ("LoadPartitionsRequest", lambda m: self._load()),
            "GetLoadState": ("GetLoadStateRequest", lambda m: self._load_state()),
            "Insert": ("InsertRequest", lambda m: self._write(m.num_rows)),
            "Query": ("QueryRequest", self._query),
            "Search": ("SearchRequest", lambda m: milvus_pb2.SearchResults(status=ok())),
        }

    def _create(self, m: milvus_pb2.CreateCollectionRequest) -> common_pb2.Status:
        s = schema_pb2.CollectionSchema()
        s.ParseFromString(m.schema)
        for i, f in enumerate(s.fields):
            f.fieldID = 100 + i
            if f.is_dynamic:  # Milvus 2.3.5's own check
                return common_pb2.Status(code=1100, error_code=common_pb2.IllegalArgument, reason=(
                    "invalid parameter[expected=disable][actual=cannot explicitly set a field as a dynamic field]"))
        self._schemas[m.collection_name] = s
        return common_pb2.Status()

    def _describe(self, m: milvus_pb2.DescribeCollectionRequest) -> milvus_pb2.DescribeCollectionResponse:
        s = self._schemas.get(m.collection_name)
        if s is None:
            return milvus_pb2.DescribeCollectionResponse(status=common_pb2.Status(
                code=100, error_code=common_pb2.CollectionNotExists,
                reason=f"can't find collection collection not found[collection={m.collection_name}]"))
        return milvus_pb2.DescribeCollectionResponse(
            status=common_pb2.Status(), schema=s, collection_name=m.collection_name, collectionID=1, shards_num=1,
            consistency_level=common_pb2.Bounded)

    def _load(self) -> common_pb2.Status:
        self._polls = 0
        return common_pb2.Status()

    def _load_state(self) -> milvus_pb2.GetLoadStateResponse:
        self._polls += 1
        loaded = self._polls > self.loading_polls
        state = common_pb2.LoadState.LoadStateLoaded if loaded else common_pb2.LoadState.LoadStateLoading
        return milvus_pb2.GetLoadStateResponse(status=common_pb2.Status(), state=state)

    def _write(self, n: int) -> milvus_pb2.MutationResult:
        self._ts += 1
        ids = schema_pb2.IDs(int_id=schema_pb2.LongArray(data=list(range(n))))
        return milvus_pb2.MutationResult(status=common_pb2.Status(), IDs=ids, insert_cnt=n, timestamp=self._ts,
                                         succ_index=list(range(n)))

    def _query(self, m: milvus_pb2.QueryRequest) -> milvus_pb2.QueryResults:
        kv = {p.key: p.value for p in m.query_params}
        if ">>>" in m.expr:
            return milvus_pb2.QueryResults(status=common_pb2.Status(
                code=65535, error_code=common_pb2.UnexpectedError, reason=PARSE_ERROR))
        if "bm25" in m.expr:
            return milvus_pb2.QueryResults(status=common_pb2.Status(
                code=65535, error_code=common_pb2.UnexpectedError, reason="function bm25 not supported"))
        if kv.get("iterator") == "True":
            return self._page(m, kv)
        return milvus_pb2.QueryResults(status=common_pb2.Status(), collection_name=m.collection_name)

    def _page(self, m: milvus_pb2.QueryRequest, kv: dict[str, str]) -> milvus_pb2.QueryResults:
        """An iterator's page as Milvus answers one with ``reduce_stop_for_best``: keys above the cursor in
        order, but no more than `PAGE_STOP` of them (where a segment's keys ran out), whatever the limit."""
        cursor = re.match(r"id > (-?\d+)", m.expr)
        after = int(cursor.group(1)) if cursor else -1
        keys = [k for k in range(ITERATOR_ROWS) if k > after][: min(int(kv["limit"]), PAGE_STOP)]
        column = schema_pb2.FieldData(field_name="id", type=schema_pb2.DataType.Int64, scalars=schema_pb2.ScalarField(
            long_data=schema_pb2.LongArray(data=keys)))
        return milvus_pb2.QueryResults(status=common_pb2.Status(), collection_name=m.collection_name,
                                       fields_data=[column], output_fields=["id"])
