from vmctl.config.lines import key_lines, keystr

DOC = '''\
include = ["a.toml"]   # comment with = sign
[machine]
name = "x"
"quoted.key" = 1
dotted.key = 2
text = """
fake = "not a key"
"""
list = [
  1,
  2,
]
inline = { a = 1, b = 2 }

[[device]]
kind = "vfio-pci"

[[device]]
kind = "vfio-ap"
adapters = [5, 6]
'''


def test_key_lines_cover_headers_keys_and_multiline_values():
    lines = key_lines(DOC)
    assert lines[("include",)] == 1
    assert lines[("machine",)] == 2
    assert lines[("machine", "name")] == 3
    assert lines[("machine", "quoted.key")] == 4
    assert lines[("machine", "dotted", "key")] == 5
    assert lines[("machine", "text")] == 6
    assert ("machine", "fake") not in lines  # inside a multi-line string
    assert lines[("machine", "list")] == 9
    assert lines[("machine", "inline", "b")] == 13
    assert lines[("device", 0)] == 15
    assert lines[("device", 1, "adapters")] == 20


def test_keystr_formats_array_indices():
    assert keystr(("device", 1, "adapters")) == "device[1].adapters"
    assert keystr(("irq", "ic-mode")) == "irq.ic-mode"
