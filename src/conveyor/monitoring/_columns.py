"""Reading tables column chunk by column chunk, so memory stays bounded on wide data.

A *source* is a pandas DataFrame, a pyarrow Table, or the path of a Parquet file (or a
folder of Parquet files). ``iter_chunks`` yields a few columns at a time as numpy arrays:
numeric columns as float64 with NaN for missing, categorical ones as pyarrow arrays (their
value counts are computed by Arrow, which is much faster than Python dictionaries).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.errors import InvalidInput, NotFound

NUMERIC = "numeric"
CATEGORICAL = "categorical"

#: Columns read together at most; fewer on long tables (see ``chunk_width``).
DEFAULT_CHUNK = 16
#: Bytes of float64 values one chunk may hold: memory stays bounded whatever the row count.
CHUNK_BUDGET = 48 * 2**20


def chunk_width(n_rows: int, chunk: int = DEFAULT_CHUNK) -> int:
    """Columns per chunk so that a chunk's float64 matrix stays within ``CHUNK_BUDGET``."""
    return max(1, min(chunk, CHUNK_BUDGET // max(8 * n_rows, 1)))


@dataclass(frozen=True)
class ColumnChunk:
    """Some columns of a source: ``numeric`` is an (rows × k) float64 matrix with NaN for
    missing values, in the order of ``numeric_names``; ``categorical`` maps name → Arrow array (or pandas Series)."""

    numeric_names: tuple[str, ...]
    numeric: Any
    categorical: dict[str, Any]


class TableSource:
    """Uniform, lazy access to the columns of a DataFrame, an Arrow table or Parquet files."""

    def __init__(self, source: Any) -> None:
        import pyarrow as pa

        self._parquet: Any = None
        self._table: Any = None
        self._frame: Any = None
        if isinstance(source, (str, os.PathLike)):
            import pyarrow.dataset as ds

            path = Path(source)
            if not path.exists():
                raise NotFound("table", str(path), hint="give a Parquet file or a folder of Parquet files")
            if path.is_file():  # one file: read column chunks without the dataset scanner's readahead
                import pyarrow.parquet as pq

                self._parquet = pq.ParquetFile(str(path))
                schema = self._parquet.schema_arrow
                self.n_rows = int(self._parquet.metadata.num_rows)
            else:
                self._parquet = ds.dataset(str(path), format="parquet")
                schema = self._parquet.schema
                self.n_rows = int(self._parquet.count_rows())
        elif isinstance(source, pa.Table):
            self._table = source
            schema = source.schema
            self.n_rows = source.num_rows
        elif _is_frame(source):
            self._frame = source
            schema = pa.Schema.from_pandas(source.head(0), preserve_index=False)
            self.n_rows = len(source)
        else:
            raise InvalidInput(
                f"cannot read a table from {type(source).__name__}",
                field="source",
                value=type(source).__name__,
                hint="pass a pandas DataFrame, a pyarrow Table or the path of a Parquet file",
            )
        self.columns: tuple[str, ...] = tuple(schema.names)
        self.kinds: dict[str, str | None] = {f.name: column_kind(f.type) for f in schema}

    def read(self, names: Sequence[str]) -> Any:
        """An Arrow table of just ``names`` (only those columns are read from Parquet)."""
        import pyarrow as pa

        if self._parquet is not None:
            if hasattr(self._parquet, "read"):
                return self._parquet.read(columns=list(names), use_threads=True)
            return self._parquet.to_table(columns=list(names))
        if self._table is not None:
            return self._table.select(list(names))
        return pa.Table.from_pandas(self._frame[list(names)], preserve_index=False)

    def iter_chunks(self, names: Sequence[str], chunk: int = DEFAULT_CHUNK) -> Iterator[ColumnChunk]:
        """Yield up to ``chunk`` columns at a time (fewer on long tables, see ``chunk_width``),
        numeric ones stacked into one float64 matrix."""
        chunk = chunk_width(self.n_rows, chunk)
        for start in range(0, len(names), chunk):
            part = list(names[start:start + chunk])
            if self._frame is not None:
                yield self._frame_chunk(part)
                continue
            if hasattr(self._parquet, "iter_batches"):
                yield self._file_chunk(part)
                continue
            table = self.read(part)
            numeric = [n for n in part if self.kinds[n] == NUMERIC]
            yield ColumnChunk(
                tuple(numeric),
                _float_matrix(table, numeric, table.num_rows),
                {n: table.column(n) for n in part if self.kinds[n] == CATEGORICAL},
            )


    def _file_chunk(self, part: list[str]) -> ColumnChunk:
        # batch by batch into the matrix: Parquet's read buffers stay one batch large
        import numpy as np
        import pyarrow as pa

        numeric = [n for n in part if self.kinds[n] == NUMERIC]
        categorical = [n for n in part if self.kinds[n] == CATEGORICAL]
        matrix = np.empty((self.n_rows, len(numeric)), dtype=np.float64, order="F")
        pieces: dict[str, list[Any]] = {n: [] for n in categorical}
        row = 0
        for batch in self._parquet.iter_batches(batch_size=65_536, columns=part, use_threads=True):
            table = pa.Table.from_batches([batch])
            matrix[row:row + batch.num_rows] = _float_matrix(table, numeric, batch.num_rows)
            for name in categorical:
                pieces[name].append(batch.column(name))
            row += batch.num_rows
        cats = {n: pa.chunked_array(pieces[n], type=self._parquet.schema_arrow.field(n).type) for n in categorical}
        return ColumnChunk(tuple(numeric), matrix, cats)

    def _frame_chunk(self, part: list[str]) -> ColumnChunk:
        # pandas numeric columns convert to float64 without a detour through Arrow
        import numpy as np

        numeric = [n for n in part if self.kinds[n] == NUMERIC]
        matrix = np.empty((self.n_rows, len(numeric)), dtype=np.float64, order="F")
        for j, name in enumerate(numeric):
            matrix[:, j] = self._frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        # pandas counts values with its own hash table; converting strings to Arrow costs more
        categorical = {n: self._frame[n] for n in part if self.kinds[n] == CATEGORICAL}
        return ColumnChunk(tuple(numeric), matrix, categorical)


def column_kind(arrow_type: Any) -> str | None:
    """numeric, categorical, or None (a type drift statistics do not apply to: dates, lists…)."""
    import pyarrow.types as t

    if t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return NUMERIC
    if t.is_boolean(arrow_type) or t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return CATEGORICAL
    if t.is_dictionary(arrow_type) or t.is_null(arrow_type):
        return CATEGORICAL
    return None


def _float_matrix(table: Any, names: Sequence[str], n_rows: int) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    out = np.empty((n_rows, len(names)), dtype=np.float64, order="F")
    for j, name in enumerate(names):
        column = table.column(name)
        if column.type != pa.float64():
            column = pc.cast(column, pa.float64())
        if column.null_count:
            column = column.fill_null(float("nan"))
        row = 0
        for piece in column.chunks:  # copy chunk by chunk: no concatenated temporary
            out[row:row + len(piece), j] = piece.to_numpy(zero_copy_only=False)
            row += len(piece)
    return out


def _is_frame(obj: Any) -> bool:
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "columns")


def open_source(source: Any) -> TableSource:
    """Wrap anything ``TableSource`` reads; a ``TableSource`` is returned as is."""
    return source if isinstance(source, TableSource) else TableSource(source)
