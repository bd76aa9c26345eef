"""The documentation: README.md is a front page of at most 200 lines; every relative link of
README.md and docs/*.md reaches an existing file and, with an #anchor, a heading of that
file; every key of the config schema is in docs/configuration.md by its dotted path; no page
names a machine path or calls the TFLM guide "the seed"."""

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"
CONFIGURATION = DOCS / "configuration.md"
SCHEMA = REPO / "schemas" / "config.schema.yaml"
MAX_README_LINES = 200
# How docs/configuration.md writes a key the user chooses in a map: a model's name under
# `models`, an archive under `tflm_sources.archives`, a core, a part or a board under `mcu`.
PLACEHOLDER = "<name>"
# What no page may contain: a path of the machine the docs were written on, and "the seed's"
# for the TFLM guide ("seed" is the random-seed key only).
# An absolute path of this machine (a relative ".../work/..." is the sample run's own folder).
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|root|home)/")

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
KEY_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|")


def pages():
    """README.md, every page of docs/ and scripts/README.md."""
    return [README, *sorted(DOCS.glob("*.md")), REPO / "scripts" / "README.md"]


def name(path):
    return path.relative_to(REPO).as_posix()


def prose_lines(text):
    """The lines of a Markdown text outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def github_slug(heading):
    """GitHub's anchor of a heading: lowercase, punctuation dropped (letters, digits,
    underscores, hyphens and spaces stay; code spans lose their backticks), spaces to
    hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(path):
    return [match[2] for line in prose_lines(path.read_text())
            if (match := HEADING.match(line))]


def anchors(path):
    """Every heading's anchor, with GitHub's -1, -2, ... for repeated ones."""
    seen, result = {}, set()
    for heading in headings(path):
        slug = github_slug(heading)
        result.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return result


def links(path):
    """The link targets of a page, outside code blocks and code spans."""
    text = CODE_SPAN.sub("", "\n".join(prose_lines(path.read_text())))
    return LINK.findall(text)


def is_external(target):
    return re.match(r"^[a-z][a-z0-9+.-]*:", target) is not None


@pytest.mark.parametrize(("page", "heading", "slug"), [
    ("docs/own-images.md", "Your own images: folders, fine-tuning, the published person model",
     "your-own-images-folders-fine-tuning-the-published-person-model"),
    ("docs/export.md", "4. Int8 evaluation", "4-int8-evaluation"),
    ("docs/dataset.md", "What the `dataset` target makes", "what-the-dataset-target-makes"),
    ("docs/reproducibility.md", "The cost, and the switch: `arithmetic`",
     "the-cost-and-the-switch-arithmetic"),
    ("docs/microcontroller.md", "Cost, and why `mcu` is not in `all`",
     "cost-and-why-mcu-is-not-in-all"),
    ("docs/tests.md", "CI stages and times", "ci-stages-and-times"),
])
def test_slug_of_real_headings(page, heading, slug):
    assert heading in headings(REPO / page), f"{page} has no heading {heading!r}"
    assert github_slug(heading) == slug, f"slug of {heading!r}"


def test_slug_keeps_underscores_and_hyphens():
    assert github_slug("The `crop_study` target -- again") == "the-crop_study-target----again"


def test_repeated_headings_get_numbered_anchors(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Notes\n\n```bash\n# not a heading\n```\n\n## Notes\n## Notes\n")
    assert anchors(page) == {"notes", "notes-1", "notes-2"}


def test_every_relative_link_resolves():
    broken, checked, anchored = [], 0, 0
    for page in pages():
        for target in links(page):
            if is_external(target):
                continue
            checked += 1
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            if not linked.exists():
                broken.append(f"{name(page)}: link {target!r}: {linked} does not exist")
                continue
            if anchor:
                anchored += 1
                if linked.suffix != ".md" or anchor not in anchors(linked):
                    broken.append(f"{name(page)}: link {target!r}: {linked.name} has no "
                                  f"heading whose anchor is #{anchor}")
    assert checked > 0 and anchored > 0, "no relative link found: the link pattern is broken"
    assert not broken, "\n".join(broken)


def schema_keys(schema):
    """The dotted path of every key the schema defines: `properties` at every depth, the
    object schemas of `additionalProperties` and `patternProperties` (a map's key written
    PLACEHOLDER), `$ref`s into the schema, and the branches of oneOf/anyOf/allOf."""

    def resolve(node):
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), f"{name(SCHEMA)}: $ref {ref!r} outside the schema"
            node = schema
            for part in ref[2:].split("/"):
                node = node[part]
        return node

    def walk(node, path):
        node = resolve(node)
        if not isinstance(node, dict):
            return
        for branch in (*node.get("oneOf", ()), *node.get("anyOf", ()), *node.get("allOf", ())):
            yield from walk(branch, path)
        if isinstance(node.get("items"), dict):
            yield from walk(node["items"], path)
        for key, sub in node.get("properties", {}).items():
            yield f"{path}.{key}" if path else key
            yield from walk(sub, f"{path}.{key}" if path else key)
        for sub in (node.get("additionalProperties"), *node.get("patternProperties", {}).values()):
            if isinstance(sub, dict):
                mapped = f"{path}.{PLACEHOLDER}" if path else PLACEHOLDER
                yield mapped
                yield from walk(sub, mapped)

    return sorted(set(walk(schema, "")))


@pytest.fixture(scope="module")
def keys():
    return schema_keys(yaml.safe_load(SCHEMA.read_text()))


def test_the_schema_walk_reaches_nested_keys(keys):
    for key in ("arithmetic", "dataset.train_shards", "download_limits.min_rate_kib_s",
                "coco_md5.train2014.zip", "sample_dataset.seed", "tflm_sources.url_base",
                f"tflm_sources.archives.{PLACEHOLDER}.tar_tree_sha256", "mcu.cores",
                f"mcu.cycles_per_instruction.{PLACEHOLDER}", f"mcu.parts.{PLACEHOLDER}.clock_mhz",
                f"models.{PLACEHOLDER}", f"models.{PLACEHOLDER}.steps",
                f"models.{PLACEHOLDER}.init_from"):
        assert key in keys, f"the walk of {name(SCHEMA)} misses {key}"


def test_every_schema_key_is_in_the_configuration_page(keys):
    text = CONFIGURATION.read_text()
    missing = [key for key in keys if f"`{key}`" not in text]
    assert not missing, (
        f"{name(CONFIGURATION)} lacks these keys of {name(SCHEMA)}, each to be written in "
        f"backticks by its dotted path ({PLACEHOLDER} for a map's key): " + ", ".join(missing))


def test_every_key_row_of_the_configuration_page_is_a_schema_key(keys):
    rows = [match[1] for line in prose_lines(CONFIGURATION.read_text())
            if (match := KEY_ROW.match(line))]
    assert rows, f"{name(CONFIGURATION)} has no key table rows"
    unknown = [key for key in rows if key not in keys]
    assert not unknown, (f"{name(CONFIGURATION)} documents keys {name(SCHEMA)} does not "
                         "define: " + ", ".join(unknown))


def test_readme_is_a_front_page():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines, more than {MAX_README_LINES}"


@pytest.mark.parametrize("page", [*pages(), REPO / "containers" / "README.md"], ids=name)
def test_no_machine_path_and_no_seed_for_the_guide(page):
    found = [f"{name(page)}:{number}: {line.strip()!r}"
             for number, line in enumerate(page.read_text().splitlines(), 1)
             if MACHINE_PATH.search(line) or "the seed's" in line.lower()]
    assert not found, "\n".join(found)


def test_every_cli_is_in_the_scripts_table():
    """scripts/README.md has a row for every CLI in scripts/, and none for a CLI that is gone."""
    table = (REPO / "scripts" / "README.md").read_text()
    listed = set(re.findall(r"^\|[^|]*\| `(\w+)\.py` \|", table, re.MULTILINE))
    clis = {path.stem for path in (REPO / "scripts").glob("*.py")}
    assert listed == clis, f"not listed: {sorted(clis - listed)}; gone: {sorted(listed - clis)}"
