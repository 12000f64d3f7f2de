"""An in-process TensorFlow Serving on 127.0.0.1, built from the official stubs.

``ModelService.GetModelStatus`` and ``PredictionService.Predict`` behave as the
real server's do for the cases the tests need: a model's versions and their
states, ``NOT_FOUND`` for an unknown model or version (``context.abort``),
``INVALID_ARGUMENT`` for inputs that do not match the signature, the answering
version in the response's ``model_spec``, and a model whose Predict is slow.
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field

import grpc

#: tensorflow.error.Code numbers used below
OK, INTERNAL = 0, 13


@dataclass
class FakeModel:
    versions: dict[int, tuple[str, int, str]]  # version -> (state name, error code, error message)
    inputs: dict[str, tuple[str, list[int]]] = field(default_factory=dict)  # name -> (dtype name, shape)
    predict_delay_s: float = 0.0
    abort_with: grpc.StatusCode | None = None  # every call fails with this code


class FakeTFServing:
    """Serve ``models`` on a free 127.0.0.1 port; ``predictions`` records every PredictRequest."""

    def __init__(self, api, models: dict[str, FakeModel]):
        self.api = api
        self.models = models
        self.predictions: list = []
        self._stopped = threading.Event()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        api.model_service_pb2_grpc.add_ModelServiceServicer_to_server(self._model_service(), self._server)
        api.prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            self._prediction_service(), self._server
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeTFServing:
        self._server.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._server.stop(grace=None).wait()

    def _find(self, spec, context) -> tuple[FakeModel, list[int]]:
        model = self.models.get(spec.name)
        if model is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}")
        if model.abort_with is not None:
            context.abort(model.abort_with, "refused")
        versions = sorted(model.versions, reverse=True)
        if spec.HasField("version"):
            if spec.version.value not in model.versions:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Could not find version {spec.version.value} of {spec.name}")
            versions = [spec.version.value]
        return model, versions

    def _model_service(self):
        api, server = self.api, self

        class ModelService(api.model_service_pb2_grpc.ModelServiceServicer):
            def GetModelStatus(self, request, context):  # noqa: N802 (gRPC method name)
                model, versions = server._find(request.model_spec, context)
                response = api.get_model_status_pb2.GetModelStatusResponse()
                for version in versions:
                    state, code, message = model.versions[version]
                    status = response.model_version_status.add(version=version)
                    status.state = api.get_model_status_pb2.ModelVersionStatus.State.Value(state)
                    status.status.error_code = code
                    status.status.error_message = message
                return response

        return ModelService()

    def _prediction_service(self):
        api, server = self.api, self

        class PredictionService(api.prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):  # noqa: N802 (gRPC method name)
                server.predictions.append(request)
                model, versions = server._find(request.model_spec, context)
                available = [v for v in versions if model.versions[v][0] == "AVAILABLE"]
                if not available:
                    context.abort(
                        grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request.model_spec.name}"
                    )
                if request.model_spec.signature_name not in ("", "serving_default"):
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Serving signature name not found")
                for name, (dtype, shape) in model.inputs.items():
                    tensor = request.inputs.get(name)
                    dims = [d.size for d in tensor.tensor_shape.dim] if tensor is not None else None
                    if tensor is None or api.types_pb2.DataType.Name(tensor.dtype) != dtype or dims != shape:
                        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"input {name} must be {dtype} {shape}")
                if model.predict_delay_s:
                    server._stopped.wait(model.predict_delay_s)
                response = api.predict_pb2.PredictResponse()
                response.model_spec.name = request.model_spec.name
                response.model_spec.version.value = available[0]
                response.model_spec.signature_name = "serving_default"
                response.outputs["score"].CopyFrom(
                    api.tensor_pb2.TensorProto(dtype=api.types_pb2.DT_FLOAT, float_val=[0.87])
                )
                return response

        return PredictionService()
