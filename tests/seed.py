"""The seed document: Veeam's "Getting Organization Backups for Restore" example.

``SEED_JSON`` is an embedded copy so the tests run without the shared notes;
``shared_seed_json()`` extracts the same JSON from the shared HTML copy when it
exists (``tests/test_model.py`` checks the two agree).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

__all__ = ["REQUEST_URL", "SEED_FILE", "SEED_JSON", "shared_seed_json", "shared_seed_path"]

SEED_FILE: Final = "000_b7651026e7045dc2.txt"

# The request the example answers (its self href names another session: that is the sample's own).
REQUEST_URL: Final = "https://abc.tech.local:4443/v5/RestoreSessions/0800471b-d0e2-422b-9d7c-35d15661c3fb/Organization"

SEED_JSON: Final = """{
 "id": "673b91dc-b4a7-4d49-8318-04ef47c0ac50",
 "name": "westsupport.onmicrosoft.com (6/26/2017 3:07:39 PM)",
 "_links": {
   "self": {
     "href": "https://abc.tech.local:4443/v5/RestoreSessions/1ae9f2e8-02ba-49c6-9dbd-d0c17cceaf4c/organization"
   },
   "mailboxes": {
     "href": "https://abc.tech.local:4443/v5/RestoreSessions/1ae9f2e8-02ba-49c6-9dbd-d0c17cceaf4c/organization/mailboxes"
   }
 },
 "_actions": {
   "exporttoPst": {
     "uri": "https://abc.tech.local:4443/v5/RestoreSessions/1ae9f2e8-02ba-49c6-9dbd-d0c17cceaf4c/organization/action",
     "method": "POST"
   },
   "search": {
     "uri": "https://abc.tech.local:4443/v5/RestoreSessions/1ae9f2e8-02ba-49c6-9dbd-d0c17cceaf4c/organization/action",
     "method": "POST"
   }
 }
}"""


def shared_seed_path() -> Path | None:
    """The shared seed page: ``../shared/seed`` next to the repo, else ``$HALNAV_SHARED/seed``."""
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "seed" / SEED_FILE]
    env = os.environ.get("HALNAV_SHARED")
    if env:
        candidates.append(Path(env) / "seed" / SEED_FILE)
    return next((path for path in candidates if path.is_file()), None)


def extract_response_body(page: str) -> Any:
    """Decode the JSON after the last "Response Body:" of an HTML-copied page.

    The copy uses non-breaking spaces for indentation; they are normalised first.
    """
    text = page.replace("\xa0", " ")
    start = text.index("{", text.rindex("Response Body:"))
    value, _ = json.JSONDecoder().raw_decode(text[start:])
    return value


def shared_seed_json() -> Any | None:
    """The seed JSON extracted from the shared page, or None when the page is not there."""
    path = shared_seed_path()
    if path is None:
        return None
    return extract_response_body(path.read_text(encoding="utf-8"))
