"""Read JSON-lines files of ingestion payloads (the bundled sample data,
recordings of the HTTP API, exports)."""

from sources.payload_files.config import PayloadFilesConfig
from sources.payload_files.transform import ReadFromPayloadFiles

__all__ = ["PayloadFilesConfig", "ReadFromPayloadFiles"]
