"""One settings path: one schema, validated once, defaults only from the schema, one error.

``schemas/config.schema.yaml`` is the one schema; it references one sub-schema per paper
(``schemas/<paper>.schema.yaml``) for the top-level paper sections and, per experiment,
for its ``analysis:`` overrides. :func:`validate_config` is called once, while Snakemake
parses the workflow: it normalises what a user plainly meant (``1e-4`` read as a string by
YAML 1.1, ``epochs: 60.0``, an empty section), refuses what cannot be meant (non-finite
numbers) and fills every default from the schema. Every problem is a :class:`ConfigError`
whose message names the key path, the value given and what is allowed.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from pathlib import Path

import jsonschema
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
PAPER_SECTIONS = ("iterative", "minima", "heinit", "breakeven")
# strings YAML 1.1 leaves unread although every ML config reads them as numbers: 1e-4, 5E3
SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


class ConfigError(ValueError):
    """A configuration problem, with the key path, the value and what is allowed."""


# ---------------------------------------------------------------- schemas


@functools.lru_cache(maxsize=None)
def _read(name: str) -> dict:
    return yaml.safe_load((SCHEMA_DIR / f"{name}.schema.yaml").read_text())


def load_schema(name: str = "config") -> dict:
    """A schema file (config, iterative, minima, heinit, breakeven) as a fresh dict."""
    return copy.deepcopy(_read(name))


def strip_defaults(schema):
    """The schema without any `default` (an override fills nothing: missing keys come
    from the paper section)."""
    if isinstance(schema, dict):
        return {k: strip_defaults(v) for k, v in schema.items() if k != "default"}
    if isinstance(schema, list):
        return [strip_defaults(v) for v in schema]
    return schema


def override_schema(paper: str) -> dict:
    """What an experiment's `analysis:` block of this paper may hold (no defaults)."""
    full = strip_defaults(load_schema(paper))
    defs = full.get("$defs", {})
    if paper == "iterative":  # any paper-level key, per experiment
        return full
    if paper == "breakeven":  # the keys of $defs/experiment_analysis, typed like the paper keys
        allowed = defs["experiment_analysis"]["properties"]
        props = {k: full["properties"].get(k, v) for k, v in allowed.items()}
        return {"$defs": defs, "type": "object", "additionalProperties": False, "properties": props}
    return {"$defs": defs, "$ref": "#/$defs/experiment_analysis"}  # minima: roles, groups ...


@functools.lru_cache(maxsize=None)
def registry() -> Registry:
    """Every schema by the name config.schema.yaml refers to it."""
    resources = [(f"{p}.schema.yaml", load_schema(p)) for p in PAPER_SECTIONS]
    resources += [(f"{p}.analysis.schema.yaml", override_schema(p)) for p in ("iterative", "minima", "breakeven")]
    # without $schema: jsonschema would check a sub-schema declaring one with its plain
    # validator class, which fills no defaults and reads 60.0 as an integer
    return Registry().with_resources((uri, DRAFT202012.create_resource({k: v for k, v in doc.items() if k != "$schema"}))
                                     for uri, doc in resources)


def _strict_integer(checker, instance) -> bool:
    """60.0 is no integer here: it would reach range() inside a job."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_STRICT = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer))


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_FILLING = _with_defaults(_STRICT)


def _validator(schema: dict, fill: bool):
    return (_FILLING if fill else _STRICT)(schema, registry=registry())


def subschema(ref: str) -> dict:
    """A schema that checks against config.schema.yaml's $defs/<ref> (one experiment, ...)."""
    return {"$defs": _read("config")["$defs"], "$ref": f"#/$defs/{ref}"}


# ---------------------------------------------------------------- messages


def short(value, limit: int = 60) -> str:
    """The value as the user wrote it, cut short (never a schema or config dump)."""
    text = repr(value) if not isinstance(value, float) else f"{value:g}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def key_path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _allowed(error) -> str:
    """What the failed keyword allows, in words."""
    v, s = error.validator, error.validator_value
    if v == "type":
        kinds = [s] if isinstance(s, str) else s
        return " or ".join({"integer": "a whole number", "number": "a number", "object": "a mapping",
                            "array": "a list", "string": "text", "boolean": "true or false",
                            "null": "null"}.get(k, k) for k in kinds)
    if v == "enum":
        return "one of " + ", ".join(map(str, s))
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return {"minimum": ">= ", "maximum": "<= ", "exclusiveMinimum": "> ", "exclusiveMaximum": "< "}[v] + str(s)
    if v == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted((error.schema.get("properties") or {}))
        return "the keys " + ", ".join(known) if known else ""
    if v in ("pattern", "not", "propertyNames"):
        return error.schema.get("description") or ""
    return ""


def describe(error: jsonschema.ValidationError, where: str = "") -> str:
    """One line: key path, the value given, what is wrong and what is allowed."""
    path = key_path(error.absolute_path)
    path = f"{where}.{path}" if where and path else (where or path or "(top level)")
    message = error.message
    if error.validator == "type":  # jsonschema repeats the whole value: keep it short
        message = f"{short(error.instance)} is not of type {error.validator_value!r}"
    elif len(message) > 200:
        message = f"{short(error.instance)} is not allowed ({error.validator})"
    allowed = _allowed(error)
    return f"{path}: {message}" + (f" (allowed: {allowed})" if allowed else "")


def _first(errors):
    errors = list(errors)
    return min(errors, key=lambda e: (list(map(str, e.absolute_path)), e.validator)) if errors else None


# ---------------------------------------------------------------- normalise and validate


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def _fixable(error):
    """The value a plainly meant input should have been, or None."""
    value, types = error.instance, error.validator_value
    types = [types] if isinstance(types, str) else types
    if isinstance(value, str) and SCIENTIFIC.match(value.strip()) and {"number", "integer"} & set(types):
        return float(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and "integer" in types:
        return int(value)
    if value is None and "object" in types:  # an empty or commented-out section: the defaults
        return {}
    return None


def normalise(instance, schema: dict, where: str = ""):
    """Rewrite in place what was plainly meant (1e-4 as text, 60.0 for a count, an empty
    section), then refuse non-finite numbers anywhere. Returns the instance."""
    for _ in range(100):
        fixes = []
        for error in _validator(schema, fill=False).iter_errors(instance):
            for e in [error, *error.context]:
                if e.validator == "type" and _fixable(e) is not None:
                    fixes.append((list(e.absolute_path), _fixable(e)))
        if not fixes:
            break
        for path, value in fixes:
            if not path:
                return value
            _get(instance, path[:-1])[path[-1]] = value
    refuse_non_finite(instance, where)
    return instance


def refuse_non_finite(value, where: str, path=()) -> None:
    """NaN and infinities are outcomes (a diverged run), never inputs."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key_path([where, *path]) if where else key_path(path)}: {value} is not allowed "
                          "(allowed: a finite number; a diverged run is an outcome, not a setting)")
    if isinstance(value, dict):
        for k, v in value.items():
            refuse_non_finite(v, where, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            refuse_non_finite(v, where, (*path, i))


def check(instance, schema: dict, where: str = "", fill: bool = True):
    """Normalise, then validate against `schema` filling its defaults; ConfigError if invalid."""
    instance = normalise(instance, schema, where)
    error = _first(_validator(schema, fill).iter_errors(instance))
    if error is not None:
        raise ConfigError(describe(error, where))
    return instance


def _drop_empty_experiment_keys(config: dict) -> None:
    """`seeds:`, `snapshots:`, `analysis:` ... with nothing under them mean "not given"."""
    experiments = config.get("experiments")
    if not isinstance(experiments, dict):
        return
    required = set(_read("config")["$defs"]["experiment"]["required"])
    for exp in experiments.values():
        if isinstance(exp, dict):
            for key in [k for k, v in exp.items() if v is None and k not in required]:
                del exp[key]


def normalise_config(config: dict) -> dict:
    """What was plainly meant, rewritten in place (no defaults yet): empty sections, 1e-4,
    integral floats for counts; non-finite numbers refused."""
    if not isinstance(config, dict):
        raise ConfigError(f"(top level): {short(config)} is not a mapping of settings")
    for section in PAPER_SECTIONS:
        if section in config and config[section] is None:
            config[section] = {}
    _drop_empty_experiment_keys(config)
    return normalise(config, load_schema("config"))


def validate_config(config: dict) -> dict:
    """The whole configuration, checked once against the one schema, defaults filled in place."""
    return check(normalise_config(config), load_schema("config"))


# ---------------------------------------------------------------- defaults and overrides


def schema_defaults(paper: str) -> dict:
    """A paper section with nothing set: every default of its schema."""
    return check({}, load_schema(paper), paper)


def deep_merge(base: dict, override: dict | None) -> dict:
    """base updated by override; nested mappings merged key by key; inputs untouched."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def check_override(paper: str, analysis: dict | None, where: str) -> dict:
    """An experiment's `analysis:` block, checked against what the paper allows there."""
    return check(copy.deepcopy(analysis or {}), override_schema(paper), where, fill=False)


def paper_settings(config: dict, paper: str, experiment: str | None = None) -> dict:
    """Schema defaults <- the config's paper section <- the experiment's `analysis:` block."""
    base = deep_merge(schema_defaults(paper), config.get(paper))
    if experiment is None:
        return base
    where = f"experiments.{experiment}.analysis"
    return deep_merge(base, check_override(paper, config["experiments"][experiment].get("analysis"), where))


# ---------------------------------------------------------------- the files themselves


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ConfigError(f"{key_node.start_mark.name}: line {line}: key {key!r} is given twice (first at "
                              f"line {seen[key]}); the second would silently replace the first (allowed: "
                              "each key once per mapping; merge the two or rename one)")
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def check_config_file(path) -> None:
    """Duplicate keys anywhere in a config file, named with both line numbers."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError:
        return  # Snakemake has already said why it cannot read it
    try:
        yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError:
        return  # Snakemake reports syntax errors itself
    except ConfigError as error:
        raise ConfigError(str(error).replace("<unicode string>", str(path), 1)) from None
