"""Cloud Storage objects as streams: uploads are read in chunks, never whole."""

from __future__ import annotations

from typing import BinaryIO, cast

from google.cloud import storage  # type: ignore[attr-defined]

# Large enough that a 200 MB file is ~25 ranged reads, small enough to keep memory flat.
READ_CHUNK_BYTES = 8 * 1024 * 1024


class GcsObjectStore:
    def __init__(self, client: storage.Client, chunk_bytes: int = READ_CHUNK_BYTES) -> None:
        self._client = client
        self._chunk_bytes = chunk_bytes

    def open_read(self, bucket: str, name: str) -> BinaryIO:
        """Peak memory is a small multiple of `chunk_bytes`, whatever the object's size."""
        blob = self._client.bucket(bucket).blob(name)
        return cast(BinaryIO, blob.open("rb", chunk_size=self._chunk_bytes))

    def write(self, bucket: str, name: str, data: BinaryIO, content_type: str) -> None:
        self._client.bucket(bucket).blob(name).upload_from_file(
            data, content_type=content_type, rewind=True)

    def read_bytes(self, bucket: str, name: str) -> bytes | None:
        blob = self._client.bucket(bucket).get_blob(name)
        return None if blob is None else blob.download_as_bytes()

    def upload_file(self, bucket: str, name: str, path: str, content_type: str) -> None:
        self._client.bucket(bucket).blob(name).upload_from_filename(
            path, content_type=content_type)
