"""The members of a reflection's `voice` mirror are spelled once, by SQL: `voicegate.attempt_mirror` writes every
member, the column's default (a reflection before its first attempt) the ones every mirror has. `VoiceMirror`, the
type the API answers and the OpenAPI document describes, is held to them here, so a member added to the SQL and
not to the type (which the API would drop without a word), or a member the type requires that the default lacks
(which would fail every reflection without an attempt), fails this test, and the OpenAPI test needs no list of
its own (tests/unit/api/test_openapi_document.py)."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg

from backend.domain.attempts import VoiceMirror
from devkit.db import create_user, seed_reflection
from tests.support import mirror, seed_attempt, seed_voice

#: The members the API answers, as they are encoded (camelCase), and those without a default.
MEMBERS = {field.encode_name for field in msgspec.structs.fields(VoiceMirror)}
REQUIRED = {field.encode_name for field in msgspec.structs.fields(VoiceMirror) if field.required}


def test_the_api_type_has_every_member_the_sql_writes(db: psycopg.Connection[Any]) -> None:
    owner = create_user(db)
    reflection = seed_reflection(db, owner)
    before = mirror(db, reflection)
    assert set(before) == REQUIRED, "the column's default holds every member the type requires, and no other"
    assert msgspec.convert(before, VoiceMirror).clone_status == "none"
    attempt = seed_attempt(db, owner, seed_voice(db, owner), reflection)
    written = mirror(db, reflection)  # as voicegate.publish_attempt wrote it, through voicegate.attempt_mirror
    assert set(written) == MEMBERS, "attempt_mirror writes every member the type answers, and no other"
    assert msgspec.convert(written, VoiceMirror).attempt_id == attempt["id"]
