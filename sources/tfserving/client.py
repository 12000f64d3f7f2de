"""TensorFlow Serving gRPC client: ``GetModelStatus`` and a timed ``Predict``, with error mapping (no Beam).

The official stubs (``tensorflow-serving-api``) are imported lazily, once per
process, by :func:`load_stubs` (call it from a poller's ``setup()``). They
import ``tensorflow.core...`` protos, which runs TensorFlow's package
``__init__``: about 9 s and 600 MB, once per worker. That cost is accepted on
purpose: loading only the protos would mean faking the ``tensorflow`` package
in ``sys.modules``, which can break any other TensorFlow user in the process.

Errors, by the scope they concern:

- the server: ``UNAVAILABLE``, ``RESOURCE_EXHAUSTED`` and ``DEADLINE_EXCEEDED`` on
  ``GetModelStatus`` (the server's cheapest call) raise
  :class:`~airis_mon.errors.TransientError`; ``UNAUTHENTICATED`` and
  ``PERMISSION_DENIED`` anywhere raise :class:`~airis_mon.errors.PermanentError`;
- one model: every other code, and any failure of ``Predict`` (the server
  answered its status call: a slow or failing model is that model's problem),
  raises :class:`ModelCallError` for the caller to report and move on.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
import time
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc

from airis_mon.errors import PermanentError, TransientError
from sources.tfserving.config import PROBE_DTYPES, ProbeTensor

__all__ = ["ModelCallError", "TFServingClient", "VersionStatus", "load_stubs"]

_STUB_MODULES = {
    "model_service_pb2_grpc": "tensorflow_serving.apis.model_service_pb2_grpc",
    "prediction_service_pb2_grpc": "tensorflow_serving.apis.prediction_service_pb2_grpc",
    "get_model_status_pb2": "tensorflow_serving.apis.get_model_status_pb2",
    "predict_pb2": "tensorflow_serving.apis.predict_pb2",
    "tensor_pb2": "tensorflow.core.framework.tensor_pb2",
    "types_pb2": "tensorflow.core.framework.types_pb2",
    "tensor_shape_pb2": "tensorflow.core.framework.tensor_shape_pb2",
}
_stubs: types.SimpleNamespace | None = None
_stubs_lock = threading.Lock()

_SERVER_TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED)
_AUTH = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def load_stubs() -> types.SimpleNamespace:
    """The official stub and proto modules, imported once per process (see the module docstring)."""
    global _stubs
    with _stubs_lock:
        if _stubs is None:
            _stubs = _import_stubs()
        return _stubs


def _import_stubs() -> types.SimpleNamespace:
    try:
        return types.SimpleNamespace(**{key: importlib.import_module(path) for key, path in _STUB_MODULES.items()})
    except ImportError as error:
        raise PermanentError(
            f"tensorflow-serving-api is not installed ({error}): pip install 'airis-mon[tfserving]'"
        ) from None


@dataclass(frozen=True)
class VersionStatus:
    """One version of a model as ``GetModelStatus`` reports it."""

    version: int
    state: str  # UNKNOWN, START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str  # tensorflow.error.Code name; "OK" when none
    error_message: str


class ModelCallError(Exception):
    """A call failed for one model only (the server itself answers)."""

    def __init__(self, call: str, code: str, details: str):
        self.call = call
        self.code = code
        self.details = details
        super().__init__(f"{call}: {code}: {details}")


def _code(error: grpc.RpcError) -> grpc.StatusCode:
    code = error.code() if callable(getattr(error, "code", None)) else None
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _details(error: grpc.RpcError) -> str:
    details = error.details() if callable(getattr(error, "details", None)) else None
    return (details or "")[:500]


class TFServingClient:
    """Calls of one model server (plaintext gRPC); :meth:`close` when done."""

    def __init__(self, target: str, deadline_s: float):
        self._api = load_stubs()
        self._target = target
        self._deadline_s = deadline_s
        self._channel = grpc.insecure_channel(target)
        self._models = self._api.model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._predictions = self._api.prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        status_field = self._api.get_model_status_pb2.ModelVersionStatus.DESCRIPTOR.fields_by_name["status"]
        self._error_codes = status_field.message_type.fields_by_name["error_code"].enum_type

    def close(self) -> None:
        self._channel.close()

    def _raise(self, call: str, model: str, error: grpc.RpcError, server_level: tuple) -> NoReturn:
        code = _code(error)
        message = f"{call}({model}) on {self._target}: {code.name}: {_details(error)}"
        if code in _AUTH:
            raise PermanentError(message) from None
        if code in server_level:
            raise TransientError(message) from None
        raise ModelCallError(call, code.name, _details(error)) from None

    def _model_spec(self, spec: Any, name: str, version: int | None, signature_name: str = "") -> None:
        spec.name = name
        if version is not None:
            spec.version.value = version
        if signature_name:
            spec.signature_name = signature_name

    def model_status(self, name: str, version: int | None) -> list[VersionStatus]:
        """``GetModelStatus``: the state of every version (or of ``version``)."""
        request = self._api.get_model_status_pb2.GetModelStatusRequest()
        self._model_spec(request.model_spec, name, version)
        try:
            response = self._models.GetModelStatus(request, timeout=self._deadline_s)
        except grpc.RpcError as error:
            self._raise("GetModelStatus", name, error, _SERVER_TRANSIENT)
        states = self._api.get_model_status_pb2.ModelVersionStatus.State
        return [
            VersionStatus(
                version=status.version,
                state=states.Name(status.state),
                error_code=self._code_name(status.status.error_code),
                error_message=status.status.error_message,
            )
            for status in response.model_version_status
        ]

    def _code_name(self, number: int) -> str:
        value = self._error_codes.values_by_number.get(number)
        return value.name if value is not None else str(number)

    def predict(
        self, name: str, version: int | None, signature_name: str, inputs: Mapping[str, ProbeTensor]
    ) -> tuple[float, int | None]:
        """A timed ``Predict``: (wall time in ms, version that answered or None if not reported)."""
        request = self._api.predict_pb2.PredictRequest()
        self._model_spec(request.model_spec, name, version, signature_name)
        for input_name, tensor in inputs.items():
            request.inputs[input_name].CopyFrom(self.tensor_proto(tensor))
        started = time.perf_counter()
        try:
            response = self._predictions.Predict(request, timeout=self._deadline_s)
        except grpc.RpcError as error:
            self._raise("Predict", name, error, ())
        latency_ms = (time.perf_counter() - started) * 1000
        served = response.model_spec.version.value if response.model_spec.HasField("version") else None
        return latency_ms, served

    def tensor_proto(self, tensor: ProbeTensor) -> Any:
        """A ``tensorflow.TensorProto`` built from the protos (no ``tf.make_tensor_proto``)."""
        proto = self._api.tensor_pb2.TensorProto(dtype=self._api.types_pb2.DataType.Value(tensor.dtype))
        for size in tensor.shape:
            proto.tensor_shape.dim.add(size=size)
        values = tensor.values
        if tensor.dtype == "DT_STRING":
            values = [str(v).encode("utf-8") for v in values]
        getattr(proto, PROBE_DTYPES[tensor.dtype]).extend(values)
        return proto
