"""The canonical Postgres tables. Each domain module holds its tables; import from here."""

from schemas.canonical.base import Base
from schemas.canonical.bookkeeping import IngestionCursor, IngestionReject, IngestionRun
from schemas.canonical.execution import (
    AgentSession,
    AttributionHint,
    HeartbeatRun,
    HeartbeatRunEvent,
    SessionCorrelation,
    TokenUsageEvent,
    ToolCall,
    UsageDayDelta,
)
from schemas.canonical.finance import (
    BudgetIncident,
    BudgetPolicy,
    CostEvent,
    FinanceEvent,
    PriceOverride,
)
from schemas.canonical.governance import (
    ActivityLog,
    Approval,
    EvaluationRubric,
    HumanAnnotation,
    PerformanceIntervention,
)
from schemas.canonical.org import Agent, ApiKey, Company
from schemas.canonical.work import (
    GitCommit,
    Goal,
    Issue,
    IssueActivity,
    IssueCommitLink,
    IssueStatusChange,
    Project,
)

metadata = Base.metadata

__all__ = [
    "ActivityLog",
    "Agent",
    "AgentSession",
    "ApiKey",
    "Approval",
    "AttributionHint",
    "Base",
    "BudgetIncident",
    "BudgetPolicy",
    "Company",
    "CostEvent",
    "EvaluationRubric",
    "FinanceEvent",
    "GitCommit",
    "Goal",
    "HeartbeatRun",
    "HeartbeatRunEvent",
    "HumanAnnotation",
    "IngestionCursor",
    "IngestionReject",
    "IngestionRun",
    "Issue",
    "IssueActivity",
    "IssueCommitLink",
    "IssueStatusChange",
    "PerformanceIntervention",
    "PriceOverride",
    "Project",
    "SessionCorrelation",
    "TokenUsageEvent",
    "ToolCall",
    "UsageDayDelta",
    "metadata",
]
