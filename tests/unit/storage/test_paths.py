"""Where each kind of object lives: in its owner's folder (the first segment, which the storage policies check), in one
of the buckets the migrations declare, and a processed copy beside its original."""

from __future__ import annotations

import uuid

from backend.db.bucket_config import declared_bucket
from backend.storage import paths


def test_every_kind_of_object_lives_in_its_owners_folder() -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    built = [
        paths.sample_upload(owner, other),
        paths.voice_sample(owner, other),
        paths.processed(paths.sample_upload(owner, other)),
        paths.consent_recording(owner, other),
        paths.render(owner, other),
        paths.preview(owner, other),
        paths.manifest(owner, other),
    ]
    assert {path.split("/")[0] for path in built} == {str(owner)}
    assert all(str(other) in path for path in built)
    assert len(set(built)) == len(built), "no two kinds share a name"


def test_a_processed_copy_sits_beside_its_original_under_a_fixed_name() -> None:
    owner, sample = uuid.uuid4(), uuid.uuid4()
    original = paths.sample_upload(owner, sample)
    assert paths.processed(original) == f"{owner}/samples/{sample}/processed.wav"
    assert paths.processed(paths.voice_sample(owner, sample)) == f"{owner}/{sample}/processed.wav"


def test_each_bucket_is_one_the_migrations_declare() -> None:
    for bucket in (paths.SAMPLES, paths.RENDERS, paths.PREVIEWS, paths.METADATA):
        assert declared_bucket(bucket).id == bucket
