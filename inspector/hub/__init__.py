"""Every fetch from the Hugging Face Hub, the rules that bound it, and the one mapping of its failures.

Files land in huggingface_hub's cache through its own functions (`hub_download`, `hub_snapshot`),
so HF_HOME, HF_HUB_OFFLINE, HF_ENDPOINT and HF_TOKEN all apply; a cached copy is used first.
Byte ranges (safetensors headers) are read with `hub_get`: huggingface_hub's session, URLs and
headers (`get_session`, `hf_hub_url`, `build_hf_headers`), under our own retry rules. Before any
download, `repo_listing` asks the Hub once per repo and process for the commit and the file list, so
a Hub that is down, rate-limiting, hung or missing the repo or revision fails fast, with one line.

The rules (a user should not wait on a dead Hub longer than on a slow one):
* a request with no answer for HF_HUB_DOWNLOAD_TIMEOUT seconds (huggingface_hub's own setting,
  default 10) is reported as hung, naming the request;
* HTTP 429/500/502/503/504 and connections cut mid-answer are retried, MAX_TRIES tries in all,
  waiting what Retry-After asks (a wait over MAX_RETRY_AFTER_S is reported at once) or 0.5 s, 1 s;
* a huggingface_hub download that receives nothing for 2 x HF_HUB_DOWNLOAD_TIMEOUT while no
  transfer is under way (its metadata requests, or a file whose answer never starts) is abandoned,
  and one probe request says why; a transfer under way is bounded by huggingface_hub's own read
  timeout and resume retries.
* every request has a total deadline (INSPECT_HUB_DEADLINE, default 300 s; a download gets the
  deadline plus its announced bytes at HUB_MIN_RATE), and every answer's ids that would become cache
  paths (ETag, X-Linked-Etag, X-Repo-Commit, a model info's sha) are checked first (inspector.hub.guard).
`describe` turns any exception huggingface_hub or httpx raises into one line starting with the repo.
huggingface_hub is imported only inside the functions that need it.
"""

from inspector.hub.cache import hub_download, hub_snapshot
from inspector.hub.failures import answer_timeout, describe
from inspector.hub.fetch import (HUB_ID, MAX_RETRY_AFTER_S, MAX_TRIES, Answer, Listing, Stopped, hub_endpoint_reachable,
                                 hub_get, hub_offline, is_hub_id, repo_listing, with_retries)

__all__ = ["HUB_ID", "MAX_RETRY_AFTER_S", "MAX_TRIES", "Answer", "Listing", "Stopped", "answer_timeout", "describe",
           "hub_download", "hub_endpoint_reachable", "hub_get", "hub_offline", "hub_snapshot", "is_hub_id",
           "repo_listing", "with_retries"]
