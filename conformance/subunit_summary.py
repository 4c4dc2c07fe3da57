"""Read a subunit v2 stream on stdin; print one JSON line per test: id, status, skip reason.

Runs under tempest's own virtualenv (python-subunit and testtools come with tempest)."""

import json
import sys

import subunit
import testtools


def main() -> None:
    def emit(test: dict) -> None:
        if test["id"].startswith("setUpClass") or test["status"] in ("success", "fail", "skip"):
            reason = ""
            if test["status"] == "skip" and "reason" in test["details"]:
                reason = test["details"]["reason"].as_text()
            elif test["status"] == "fail" and "traceback" in test["details"]:
                reason = test["details"]["traceback"].as_text().strip().splitlines()[-1][:300]
            print(json.dumps({"id": test["id"], "status": test["status"], "reason": reason}))

    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
    result = testtools.StreamToDict(emit)
    result.startTestRun()
    try:
        stream.run(result)
    finally:
        result.stopTestRun()


if __name__ == "__main__":
    main()
