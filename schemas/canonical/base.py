"""Declarative base and the column types every canonical table shares."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from sqlalchemy import BigInteger, DateTime, ForeignKey, MetaData, Numeric, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from schemas.money import USD_PRECISION, USD_SCALE

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Money: exact USD with sub-cent precision (a request can cost $0.00000008).
USD = Numeric(USD_PRECISION, USD_SCALE)

BigId = Annotated[int, mapped_column(BigInteger, primary_key=True, autoincrement=True)]
Tokens = Annotated[int, mapped_column(BigInteger, nullable=False, server_default="0")]
Timestamp = Annotated[datetime, mapped_column(DateTime(timezone=True), nullable=False)]
OptionalTimestamp = Annotated[datetime | None, mapped_column(DateTime(timezone=True))]
CreatedAt = Annotated[
    datetime, mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
]
Json = Annotated[dict[str, Any], mapped_column(JSONB, nullable=False, server_default="{}")]
OptionalJson = Annotated[dict[str, Any] | None, mapped_column(JSONB)]
Money = Annotated[Decimal, mapped_column(USD, nullable=False)]
OptionalMoney = Annotated[Decimal | None, mapped_column(USD)]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {str: Text(), int: BigInteger()}


def company_of_session() -> Mapped[int]:
    """The owning company of a row that belongs to a session, without a foreign key of its
    own: the row reaches its company through its session (deleting a company cascades to
    its sessions and from them to their rows), and on the bulk-loaded fact tables a per-row
    check of the same fact costs about a quarter of the merge that loads them."""
    return mapped_column(BigInteger, nullable=False)


def company_fk(*, index: bool = True) -> Mapped[int]:
    """The owning company. Tables whose natural key starts with company_id need no index
    of their own on it (`index=False`): the key's index serves those lookups."""
    return mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), nullable=False, index=index
    )
