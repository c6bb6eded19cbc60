from featx.cache.key import SCHEMA_VERSION, cache_key


def test_key_depends_on_every_input_and_not_on_dict_order():
    base = dict(dataset="nih", backbone={"name": "dinov2_vitl14", "img_size": 224}, weights_hash="abc",
                preprocessing={"size": 224, "intensity": "minmax"})
    key, inputs = cache_key(**base)
    assert inputs["schema"] == SCHEMA_VERSION
    reordered = dict(base, backbone={"img_size": 224, "name": "dinov2_vitl14"})
    assert cache_key(**reordered)[0] == key
    for field, value in [("dataset", "chexpert"), ("weights_hash", "abd"),
                         ("backbone", {"name": "dinov2_vitl14", "img_size": 448}),
                         ("preprocessing", {"size": 224, "intensity": "window"})]:
        assert cache_key(**dict(base, **{field: value}))[0] != key, field
    assert len(key) == 16 and int(key, 16) >= 0
