"""Codecs of the bulk import RPCs: Import, GetImportState and ListImportTasks (``utility.do_bulk_insert`` and kin).

Importing this module adds its codecs to `heron.wire._codecs.CODECS`. A job
is described (`heron.engine._import.ImportJob.describe`) as Milvus's
GetImportStateResponse: the state as ``common.ImportState`` numbers, and
``infos`` with the files, collection, partition, ``progress_percent``,
``failed_reason`` and ``skipped_rows`` (rows a resumed job found imported).
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import milvus_pb2

from .. import _requests as rq
from .._requests_ops import IMPORT_STATE_NAMES
from . import _schema as ws
from ._codecs import CODECS, Codec, SchemaFn

C = milvus_pb2


def _import_decode(m: Any, db: str, s: SchemaFn) -> rq.ImportFiles:
    return rq.ImportFiles(db, m.collection_name, tuple(m.files), m.partition_name, ws.kv_dict(m.options))


def _import_request(r: rq.ImportFiles, s: SchemaFn) -> Any:
    return C.ImportRequest(db_name=r.db_name, collection_name=r.collection_name, partition_name=r.partition_name,
                           files=list(r.files), options=ws.kv_pairs(dict(r.options)))


def state_reply(job: dict[str, Any]) -> Any:
    """One job (as the engine describes it) as a GetImportStateResponse."""
    infos = {"files": ",".join(f for g in job["files"] for f in g), "collection": job["collection_name"],
             "partition": job["partition_name"], "progress_percent": str(job["progress"]),
             "failed_reason": job["reason"], "skipped_rows": str(job.get("skipped_rows", 0))}
    return C.GetImportStateResponse(state=job["state"], row_count=job["imported_rows"], id=job["job_id"],
                                    infos=ws.kv_pairs(infos), create_ts=job["create_ts"])


def state_from(reply: Any, db: str = "") -> dict[str, Any]:
    """A GetImportStateResponse as the engine's description of the job."""
    infos = ws.kv_dict(reply.infos)
    files = [[f] for f in infos.get("files", "").split(",") if f]
    return {"job_id": int(reply.id), "db_name": db, "collection_name": infos.get("collection", ""),
            "partition_name": infos.get("partition", ""), "state": int(reply.state),
            "state_name": IMPORT_STATE_NAMES.get(int(reply.state), str(int(reply.state))),
            "progress": int(infos.get("progress_percent", "0") or 0), "imported_rows": int(reply.row_count),
            "reason": infos.get("failed_reason", ""), "skipped_rows": int(infos.get("skipped_rows", "0") or 0),
            "files": files, "create_ts": int(reply.create_ts)}


CODECS.update({c.rpc: c for c in [
    Codec("Import", rq.ImportFiles, _import_decode,
          lambda res, r, s: C.ImportResponse(tasks=[int(res)]),
          _import_request,
          lambda reply, r: int(reply.tasks[0])),
    Codec("GetImportState", rq.GetImportProgress,
          lambda m, db, s: rq.GetImportProgress(int(m.task)),
          lambda res, r, s: state_reply(res),
          lambda r, s: C.GetImportStateRequest(task=int(r.job_id)),
          lambda reply, r: state_from(reply)),
    Codec("ListImportTasks", rq.ListImports,
          lambda m, db, s: rq.ListImports(db, m.collection_name, int(m.limit)),
          lambda res, r, s: C.ListImportTasksResponse(tasks=[state_reply(j) for j in res]),
          lambda r, s: C.ListImportTasksRequest(db_name=r.db_name, collection_name=r.collection_name,
                                                limit=r.limit),
          lambda reply, r: [state_from(t, r.db_name) for t in reply.tasks]),
]})
