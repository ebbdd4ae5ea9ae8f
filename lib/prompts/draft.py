"""The prompt being edited, as plain values: what the Prompt page edits and the workspace keeps."""

from __future__ import annotations

from dataclasses import dataclass, field

from lib.prompts import templates
from lib.prompts.checks import Checks
from lib.prompts.templates import Example, PromptSpec


def parse_columns(text: str) -> tuple[str, ...]:
    """'company, industry ,  , fit' -> ('company', 'industry', 'fit'), duplicates dropped."""
    return tuple(dict.fromkeys(p.strip() for p in (text or "").split(",") if p.strip()))


@dataclass
class Draft:
    """The prompt being edited, as plain values (what the prompt page's widgets hold)."""

    name: str = "Untitled prompt"
    description: str = ""
    system: str = ""
    examples: list[tuple[str, str]] = field(default_factory=list)
    template: str = ""
    outputs: str = "output"
    json_schema: dict | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    reasoning_effort: str | None = None
    field_cap: int = templates.FIELD_CAP
    version: int = 1
    rows_per_request: int | None = None  # opt-in packing (lib.prompts.packing)
    checks: Checks = field(default_factory=Checks)
    optional_fields: tuple[str, ...] = ()  # placeholders a file may lack (sent empty)
    tags: tuple[str, ...] = ()  # kept so that saving a version keeps the file's tags
    # Web research (lib.prompts.research) and one answer per company (the placeholder keying it).
    tools: tuple[str, ...] = ()
    max_tool_calls: int | None = None
    search_context_size: str | None = None
    user_location: tuple[tuple[str, str], ...] = ()
    one_answer_per: str | None = None

    @classmethod
    def of(cls, spec: PromptSpec) -> Draft:
        return cls(
            name=spec.name,
            description=spec.description,
            system=spec.system,
            examples=[(e.user, e.assistant) for e in spec.examples],
            template=spec.template,
            outputs=", ".join(spec.output_columns),
            json_schema=spec.json_schema,
            model=spec.model,
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
            reasoning_effort=spec.reasoning_effort,
            field_cap=spec.field_cap,
            version=spec.version,
            rows_per_request=spec.rows_per_request,
            checks=spec.checks,
            optional_fields=tuple(spec.optional_fields),
            tags=tuple(spec.tags),
            tools=tuple(spec.tools),
            max_tool_calls=spec.max_tool_calls,
            search_context_size=spec.search_context_size,
            user_location=tuple(spec.user_location),
            one_answer_per=spec.one_answer_per,
        )

    def spec(self) -> PromptSpec:
        """The PromptSpec; raises ValueError with a plain message when a field cannot work."""
        columns = parse_columns(self.outputs)
        if self.json_schema is None and not columns:
            raise ValueError("Name at least one output column.")
        examples = tuple(Example(u, a) for u, a in self.examples if u.strip() or a.strip())
        return PromptSpec(
            name=self.name.strip() or "Untitled prompt",
            description=self.description,
            version=self.version,
            system=self.system,
            examples=examples,
            template=self.template,
            output_columns=("output",) if self.json_schema is not None else columns,
            json_schema=self.json_schema,
            model=(self.model or "").strip() or None,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            reasoning_effort=self.reasoning_effort,
            field_cap=self.field_cap,
            rows_per_request=self.rows_per_request,
            checks=self.checks,
            optional_fields=tuple(self.optional_fields),
            tags=tuple(self.tags),
            tools=tuple(self.tools),
            max_tool_calls=self.max_tool_calls,
            search_context_size=self.search_context_size,
            user_location=tuple(tuple(p) for p in self.user_location or ()),
            one_answer_per=self.one_answer_per or None,
        )
