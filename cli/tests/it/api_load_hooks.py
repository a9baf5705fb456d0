"""Schemathesis hooks for cli/tests/it/api_load.rs.

A generated settlement id is almost never one the node holds, so every dispute and ruling would
stop at 404. Most cases are pinned to a settlement the node holds (FIXD_SETTLEMENT_ID), in the
path and in the body's settlement_id, so that bodies get past the JSON and settlement checks to
the signature check; some dispute bodies are replaced by disputes correctly signed by their
disputer (FIXD_SIGNED_DISPUTES, written by the test), which get past the signature check too.
"""

import copy
import json
import os
import random

import schemathesis

SETTLEMENT = os.environ["FIXD_SETTLEMENT_ID"]
with open(os.environ["FIXD_SIGNED_DISPUTES"]) as f:
    SIGNED = json.load(f)
RNG = random.Random(15)


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if "{id}" not in case.operation.path or not isinstance(case.path_parameters, dict):
        return
    # A case meant to break the document stays as generated.
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if RNG.random() < 0.2:
        return
    case.path_parameters["id"] = SETTLEMENT
    if not isinstance(case.body, dict):
        return
    for key in ("dispute", "ruling"):
        if isinstance(case.body.get(key), dict):
            case.body[key]["settlement_id"] = SETTLEMENT
    if case.operation.path.endswith("/disputes") and case.method.upper() == "POST" and SIGNED and RNG.random() < 0.3:
        case.body = copy.deepcopy(RNG.choice(SIGNED))
