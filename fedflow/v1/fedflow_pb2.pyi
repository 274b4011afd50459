from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FlowStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLOW_STATUS_UNSPECIFIED: _ClassVar[FlowStatus]
    FLOW_STATUS_RUNNING: _ClassVar[FlowStatus]
    FLOW_STATUS_SUSPENDED: _ClassVar[FlowStatus]
    FLOW_STATUS_DONE: _ClassVar[FlowStatus]
    FLOW_STATUS_FAILED: _ClassVar[FlowStatus]
    FLOW_STATUS_CANCELLED: _ClassVar[FlowStatus]
    FLOW_STATUS_MOVED: _ClassVar[FlowStatus]
    FLOW_STATUS_UNKNOWN: _ClassVar[FlowStatus]
FLOW_STATUS_UNSPECIFIED: FlowStatus
FLOW_STATUS_RUNNING: FlowStatus
FLOW_STATUS_SUSPENDED: FlowStatus
FLOW_STATUS_DONE: FlowStatus
FLOW_STATUS_FAILED: FlowStatus
FLOW_STATUS_CANCELLED: FlowStatus
FLOW_STATUS_MOVED: FlowStatus
FLOW_STATUS_UNKNOWN: FlowStatus

class CallRequest(_message.Message):
    __slots__ = ("fn", "payload", "call_id", "blobs")
    FN_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    fn: str
    payload: bytes
    call_id: str
    blobs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, fn: _Optional[str] = ..., payload: _Optional[bytes] = ..., call_id: _Optional[str] = ..., blobs: _Optional[_Iterable[bytes]] = ...) -> None: ...

class RemoteFailure(_message.Message):
    __slots__ = ("type", "message")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class CallResponse(_message.Message):
    __slots__ = ("value", "failure", "blobs")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    value: bytes
    failure: RemoteFailure
    blobs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, value: _Optional[bytes] = ..., failure: _Optional[_Union[RemoteFailure, _Mapping]] = ..., blobs: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ReplicaHeader(_message.Message):
    __slots__ = ("source", "total_bytes", "sha256")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    source: str
    total_bytes: int
    sha256: str
    def __init__(self, source: _Optional[str] = ..., total_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class PushReplicaRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ReplicaHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[ReplicaHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class PushReplicaResponse(_message.Message):
    __slots__ = ("flows",)
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    flows: int
    def __init__(self, flows: _Optional[int] = ...) -> None: ...

class FetchReplicaRequest(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: str
    def __init__(self, source: _Optional[str] = ...) -> None: ...

class FetchReplicaResponse(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ReplicaHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[ReplicaHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class IdSelection(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RestoreRequest(_message.Message):
    __slots__ = ("source", "only")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ONLY_FIELD_NUMBER: _ClassVar[int]
    source: str
    only: IdSelection
    def __init__(self, source: _Optional[str] = ..., only: _Optional[_Union[IdSelection, _Mapping]] = ...) -> None: ...

class RestoreResponse(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ClaimsRequest(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class FlowClaim(_message.Message):
    __slots__ = ("id", "epoch")
    ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    id: str
    epoch: int
    def __init__(self, id: _Optional[str] = ..., epoch: _Optional[int] = ...) -> None: ...

class ClaimsResponse(_message.Message):
    __slots__ = ("claims",)
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    claims: _containers.RepeatedCompositeFieldContainer[FlowClaim]
    def __init__(self, claims: _Optional[_Iterable[_Union[FlowClaim, _Mapping]]] = ...) -> None: ...

class FlowOutcome(_message.Message):
    __slots__ = ("id", "status", "result", "tag")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: FlowStatus
    result: bytes
    tag: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[FlowStatus, str]] = ..., result: _Optional[bytes] = ..., tag: _Optional[str] = ...) -> None: ...

class StartRequest(_message.Message):
    __slots__ = ("flow", "input", "id")
    FLOW_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    flow: str
    input: bytes
    id: str
    def __init__(self, flow: _Optional[str] = ..., input: _Optional[bytes] = ..., id: _Optional[str] = ...) -> None: ...

class StartResponse(_message.Message):
    __slots__ = ("outcome",)
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    outcome: FlowOutcome
    def __init__(self, outcome: _Optional[_Union[FlowOutcome, _Mapping]] = ...) -> None: ...

class ResumeRequest(_message.Message):
    __slots__ = ("id", "value", "tag")
    ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    value: bytes
    tag: str
    def __init__(self, id: _Optional[str] = ..., value: _Optional[bytes] = ..., tag: _Optional[str] = ...) -> None: ...

class ResumeResponse(_message.Message):
    __slots__ = ("outcome",)
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    outcome: FlowOutcome
    def __init__(self, outcome: _Optional[_Union[FlowOutcome, _Mapping]] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("id", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: FlowStatus
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[FlowStatus, str]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("id", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: FlowStatus
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[FlowStatus, str]] = ...) -> None: ...

class ResultRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ResultResponse(_message.Message):
    __slots__ = ("id", "result")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    id: str
    result: bytes
    def __init__(self, id: _Optional[str] = ..., result: _Optional[bytes] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("status", "flow", "limit", "page_token", "id_prefix")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    status: FlowStatus
    flow: str
    limit: int
    page_token: str
    id_prefix: str
    def __init__(self, status: _Optional[_Union[FlowStatus, str]] = ..., flow: _Optional[str] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ..., id_prefix: _Optional[str] = ...) -> None: ...

class FlowEntry(_message.Message):
    __slots__ = ("id", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: FlowStatus
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[FlowStatus, str]] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("flows", "next_page_token")
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flows: _containers.RepeatedCompositeFieldContainer[FlowEntry]
    next_page_token: str
    def __init__(self, flows: _Optional[_Iterable[_Union[FlowEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PendingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PendingEntry(_message.Message):
    __slots__ = ("id", "tag", "kind", "payload")
    ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    id: str
    tag: str
    kind: str
    payload: bytes
    def __init__(self, id: _Optional[str] = ..., tag: _Optional[str] = ..., kind: _Optional[str] = ..., payload: _Optional[bytes] = ...) -> None: ...

class PendingResponse(_message.Message):
    __slots__ = ("pending",)
    PENDING_FIELD_NUMBER: _ClassVar[int]
    pending: _containers.RepeatedCompositeFieldContainer[PendingEntry]
    def __init__(self, pending: _Optional[_Iterable[_Union[PendingEntry, _Mapping]]] = ...) -> None: ...

class GcRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GcResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class ForgetRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ForgetResponse(_message.Message):
    __slots__ = ("id", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: FlowStatus
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[FlowStatus, str]] = ...) -> None: ...

class ReplicateRequest(_message.Message):
    __slots__ = ("peer",)
    PEER_FIELD_NUMBER: _ClassVar[int]
    peer: str
    def __init__(self, peer: _Optional[str] = ...) -> None: ...

class ReplicateResponse(_message.Message):
    __slots__ = ("peer", "flows")
    PEER_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    peer: str
    flows: int
    def __init__(self, peer: _Optional[str] = ..., flows: _Optional[int] = ...) -> None: ...

class RestoreFromRequest(_message.Message):
    __slots__ = ("peer", "source")
    PEER_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    peer: str
    source: str
    def __init__(self, peer: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class RestoreFromResponse(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class HandoffRequest(_message.Message):
    __slots__ = ("peer",)
    PEER_FIELD_NUMBER: _ClassVar[int]
    peer: str
    def __init__(self, peer: _Optional[str] = ...) -> None: ...

class HandoffResponse(_message.Message):
    __slots__ = ("peer", "ids")
    PEER_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    peer: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, peer: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class WorkProgress(_message.Message):
    __slots__ = ("phase", "done", "total", "unit")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    phase: str
    done: int
    total: int
    unit: str
    def __init__(self, phase: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., unit: _Optional[str] = ...) -> None: ...

class ReplicateUpdate(_message.Message):
    __slots__ = ("progress", "done")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    progress: WorkProgress
    done: ReplicateResponse
    def __init__(self, progress: _Optional[_Union[WorkProgress, _Mapping]] = ..., done: _Optional[_Union[ReplicateResponse, _Mapping]] = ...) -> None: ...

class RestoreFromUpdate(_message.Message):
    __slots__ = ("progress", "done")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    progress: WorkProgress
    done: RestoreFromResponse
    def __init__(self, progress: _Optional[_Union[WorkProgress, _Mapping]] = ..., done: _Optional[_Union[RestoreFromResponse, _Mapping]] = ...) -> None: ...

class HandoffUpdate(_message.Message):
    __slots__ = ("progress", "done")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    progress: WorkProgress
    done: HandoffResponse
    def __init__(self, progress: _Optional[_Union[WorkProgress, _Mapping]] = ..., done: _Optional[_Union[HandoffResponse, _Mapping]] = ...) -> None: ...

class PeersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PeerInfo(_message.Message):
    __slots__ = ("name", "address", "serving")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    serving: bool
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., serving: _Optional[bool] = ...) -> None: ...

class PeersResponse(_message.Message):
    __slots__ = ("peers",)
    PEERS_FIELD_NUMBER: _ClassVar[int]
    peers: _containers.RepeatedCompositeFieldContainer[PeerInfo]
    def __init__(self, peers: _Optional[_Iterable[_Union[PeerInfo, _Mapping]]] = ...) -> None: ...

class ReplicasRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReplicaSlot(_message.Message):
    __slots__ = ("source", "flows", "bytes", "updated", "sender")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    source: str
    flows: int
    bytes: int
    updated: float
    sender: str
    def __init__(self, source: _Optional[str] = ..., flows: _Optional[int] = ..., bytes: _Optional[int] = ..., updated: _Optional[float] = ..., sender: _Optional[str] = ...) -> None: ...

class ReplicasResponse(_message.Message):
    __slots__ = ("replicas",)
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaSlot]
    def __init__(self, replicas: _Optional[_Iterable[_Union[ReplicaSlot, _Mapping]]] = ...) -> None: ...

class TimersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TimerEntry(_message.Message):
    __slots__ = ("id", "tag", "wake_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    WAKE_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    tag: str
    wake_at: float
    def __init__(self, id: _Optional[str] = ..., tag: _Optional[str] = ..., wake_at: _Optional[float] = ...) -> None: ...

class TimersResponse(_message.Message):
    __slots__ = ("timers",)
    TIMERS_FIELD_NUMBER: _ClassVar[int]
    timers: _containers.RepeatedCompositeFieldContainer[TimerEntry]
    def __init__(self, timers: _Optional[_Iterable[_Union[TimerEntry, _Mapping]]] = ...) -> None: ...

class WakeRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class WakeResponse(_message.Message):
    __slots__ = ("outcome",)
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    outcome: FlowOutcome
    def __init__(self, outcome: _Optional[_Union[FlowOutcome, _Mapping]] = ...) -> None: ...

class ScheduleRequest(_message.Message):
    __slots__ = ("name", "flow", "input", "cron", "every", "catchup", "overlap", "paused")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    EVERY_FIELD_NUMBER: _ClassVar[int]
    CATCHUP_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    name: str
    flow: str
    input: bytes
    cron: str
    every: float
    catchup: str
    overlap: str
    paused: bool
    def __init__(self, name: _Optional[str] = ..., flow: _Optional[str] = ..., input: _Optional[bytes] = ..., cron: _Optional[str] = ..., every: _Optional[float] = ..., catchup: _Optional[str] = ..., overlap: _Optional[str] = ..., paused: _Optional[bool] = ...) -> None: ...

class ScheduleInfo(_message.Message):
    __slots__ = ("name", "flow", "input", "cron", "every", "catchup", "overlap", "paused", "next_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    EVERY_FIELD_NUMBER: _ClassVar[int]
    CATCHUP_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    NEXT_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    flow: str
    input: bytes
    cron: str
    every: float
    catchup: str
    overlap: str
    paused: bool
    next_at: float
    def __init__(self, name: _Optional[str] = ..., flow: _Optional[str] = ..., input: _Optional[bytes] = ..., cron: _Optional[str] = ..., every: _Optional[float] = ..., catchup: _Optional[str] = ..., overlap: _Optional[str] = ..., paused: _Optional[bool] = ..., next_at: _Optional[float] = ...) -> None: ...

class SchedulesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SchedulesResponse(_message.Message):
    __slots__ = ("schedules",)
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[ScheduleInfo]
    def __init__(self, schedules: _Optional[_Iterable[_Union[ScheduleInfo, _Mapping]]] = ...) -> None: ...

class UnscheduleRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UnscheduleResponse(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
