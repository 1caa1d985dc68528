"""Cloud Storage object finalized → claims/authorizations in Firestore (Contract 2).

Errors that a retry can fix (Firestore or Pub/Sub unavailable, another delivery holding the
upload) propagate: the function fails and Eventarc redelivers. Bad files do not raise; they
end as a failed upload summary and a rejects file.
"""

import functions_framework
from cloudevents.http import CloudEvent

from upstream.adapters.wiring import ingest_deps
from upstream.events import StorageObjectEvent
from upstream.http import retry_later_without_a_traceback
from upstream.logs import configure_logging
from upstream.ports import UploadBusy
from upstream.services.ingest_upload import ingest_object


@functions_framework.cloud_event
def file_ingest(event: CloudEvent) -> None:
    configure_logging()
    stored = StorageObjectEvent.from_cloud_event(event)
    try:
        ingest_object(stored, ingest_deps())
    except UploadBusy as busy:
        retry_later_without_a_traceback(busy, object=stored.name)
