import conveyor.blobs


def test_public_surface_is_pinned_and_sorted() -> None:
    assert conveyor.blobs.__all__ == [
        "Blob",
        "BlobStore",
        "DestinationExists",
        "Digest",
        "MANIFEST_MEDIA_TYPE",
        "MANIFEST_VERSION",
        "Manifest",
        "ManifestEntry",
        "check_relative_path",
    ]
    assert conveyor.blobs.__all__ == sorted(conveyor.blobs.__all__)
    for name in conveyor.blobs.__all__:
        assert hasattr(conveyor.blobs, name)
