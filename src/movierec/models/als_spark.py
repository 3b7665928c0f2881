"""`als-spark`: Apache Spark MLlib's ALS (`pyspark.ml.recommendation.ALS`) as a movierec model.

The same implicit-feedback ALS as `als` (Hu, Koren & Volinsky 2008), solved by Spark, so
training can run on a cluster (YARN, Kubernetes, Spark standalone) as well as on one
machine (`local[2]`). Spark is only needed to *fit*: the learned user and movie factors
come back into ordinary numpy arrays, so the bundle, evaluation, the retrieval index, the
registry and the service use the model as they use `als`, and loading a bundle needs
neither pyspark nor Java.

Where Spark runs (`master`, first match wins):

1. the model's `master` parameter (`local[2]`, `spark://host:7077`, `yarn`, `k8s://...`);
2. the master of `spark-submit`, when the process was started by it;
3. `$MOVIEREC_SPARK_MASTER`;
4. `local[2]`.

A Spark session that is already running (a notebook's, a test fixture's, spark-submit's
once started) is used as it is and left running; otherwise `fit` starts one (quiet
logging, no web UI, `driver_memory` for the driver) and stops it when the fit ends, even
when it fails. Before it starts one it checks that pyspark is installed (the `spark`
extra) and that Java 17 or newer is there; each missing piece is one `ConfigError`
sentence saying how to get it.

The ratings go to Spark as Arrow record batches (users x items in index space, each
(user, movie) pair once, as `als` sees them), never through pandas. Spark's IDs are
movierec's user and movie *indices*, so the factors land in index order with no join.

Differences from `als` worth knowing when comparing the two:

* Spark scales `regularization` (its `regParam`) by each user's (movie's) number of
  ratings (ALS-WR, Zhou et al. 2008); implicit does not. The same number therefore
  regularises much more here: 0.01-0.1 here is in the range of implicit's 1-20 on
  MovieLens.
* Spark solves each least-squares step exactly (Cholesky); `als` defaults to conjugate
  gradient.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import warnings
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.models._fold_in import implicit_user_vector
from movierec.models._memory import base_fit_bytes, csr_bytes
from movierec.models.base import Capabilities
from movierec.models.implicit_models import _VALUES, _ImplicitFactorModel, _interaction_matrix
from movierec.models.space import Categorical, Float, Int
from movierec.training.progress import progress_task

if TYPE_CHECKING:  # pyspark is an optional extra, imported where a fit needs it
    from pyspark.sql import SparkSession

#: the environment variable naming the default Spark master
MASTER_ENV = "MOVIEREC_SPARK_MASTER"
#: the master used when nothing else names one
DEFAULT_MASTER = "local[2]"
#: the Java release Spark 4 needs at least
JAVA_MIN = 17

INSTALL_PYSPARK = ("als-spark needs pyspark: install the spark extra with `bash scripts/setup.sh dev,spark` "
                   "(or `pip install 'movierec[spark]'`).")
INSTALL_JAVA = "install it with `apt-get install openjdk-17-jre-headless` (or set JAVA_HOME)"

_MEMORY = re.compile(r"^\s*(\d+)\s*([kmgt]?)b?\s*$", re.IGNORECASE)
_JAVA_VERSION = re.compile(r'version\s+"(\d+)(?:\.(\d+))?')


def parse_driver_memory(text: Any) -> int:
    """Spark's memory size ("512m", "1g", "2048") as bytes (no unit: MiB, as Spark reads it).

    Raises:
        ConfigError: when `text` is not such a size.
    """
    match = _MEMORY.match(str(text)) if isinstance(text, str) else None
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f"driver_memory must be a size such as '1g' or '512m', got {text!r}.")
    unit = match.group(2).lower() or "m"
    return int(match.group(1)) * {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit]


def _under_spark_submit() -> bool:
    """Whether this Python process was started by `spark-submit` (its JVM is already up)."""
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


def resolve_master(master: str | None) -> str | None:
    """The Spark master a fit uses (see the module docstring); None: spark-submit's own.

    Raises:
        ConfigError: when `master` is not a non-empty string.
    """
    if master is not None:
        if not isinstance(master, str) or not master.strip():
            raise ConfigError(f"master must name a Spark master such as 'local[2]', 'spark://host:7077' or "
                              f"'yarn', got {master!r}.")
        return master.strip()
    if _under_spark_submit():
        return None
    return os.environ.get(MASTER_ENV, "").strip() or DEFAULT_MASTER


def java_problem(environ: dict[str, str] | None = None) -> str | None:
    """Why Spark cannot start a JVM here, as one sentence; None when Java 17+ is there.

    Finds `java` as Spark's launcher does: `$JAVA_HOME/bin/java` when JAVA_HOME is set,
    else `java` on PATH; then reads its release from `java -version`.

    Args:
        environ: the environment to look in; None: this process's.
    """
    env = os.environ if environ is None else environ
    home = env.get("JAVA_HOME", "").strip()
    if home:
        java = os.path.join(home, "bin", "java")
        if not os.access(java, os.X_OK):
            return (f"als-spark needs Java {JAVA_MIN}, but JAVA_HOME={home} has no bin/java: "
                    f"{INSTALL_JAVA}.")
    else:
        java = shutil.which("java", path=env.get("PATH", ""))
        if java is None:
            return f"als-spark needs Java {JAVA_MIN}: {INSTALL_JAVA}."
    try:
        probe = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, env=dict(env))
    except (OSError, subprocess.SubprocessError):
        return f"als-spark needs Java {JAVA_MIN}, but {java} does not run: {INSTALL_JAVA}."
    found = _JAVA_VERSION.search(probe.stderr + probe.stdout)
    if found:
        major = int(found.group(2) or 0) if found.group(1) == "1" else int(found.group(1))  # "1.8" is Java 8
        if major < JAVA_MIN:
            return f"als-spark needs Java {JAVA_MIN} or newer, but {java} is Java {major}: {INSTALL_JAVA}."
    return None


def _import_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ConfigError(INSTALL_PYSPARK) from None


@contextmanager
def spark_session(master: str | None = None, driver_memory: str = "1g",
                  app_name: str = "movierec als-spark") -> Iterator[SparkSession]:
    """The running Spark session, or a new quiet one that is stopped when the block ends.

    A session already running in this process is yielded as it is and left running.
    Otherwise pyspark and Java are checked and a session is started on
    `resolve_master(master)`, with Spark's logging at errors only, no web UI, no console
    progress bar, `driver_memory` for the driver (it holds the ratings and, under
    `local[N]`, does all the work) and, for a local master, the driver bound to loopback.

    Raises:
        ConfigError: pyspark is not installed, Java 17+ is missing, or a bad master or
            driver_memory (one sentence each).
    """
    _import_pyspark()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    running = SparkContext._active_spark_context
    if running is not None:
        yield SparkSession.builder.getOrCreate()
        return
    where = resolve_master(master)
    parse_driver_memory(driver_memory)
    if not _under_spark_submit():
        problem = java_problem()
        if problem:
            raise ConfigError(problem)
    builder = SparkSession.builder.appName(app_name)
    if where is not None:
        builder = builder.master(where)
    settings = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                "spark.driver.memory": driver_memory}
    if not _under_spark_submit():  # the driver JVM is ours to start: quiet from its first line
        log4j = resources.files("movierec.models").joinpath("spark_log4j2.properties")
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{log4j}"
    if where is not None and where.startswith("local"):
        settings.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
    for key, value in settings.items():
        builder = builder.config(key, value)
    with tempfile.TemporaryDirectory(prefix="movierec-spark-") as scratch:
        with warnings.catch_warnings():
            # pyspark warns about the pandas release while it starts; movierec hands it no pandas
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark\.")
            session = builder.getOrCreate()
        try:
            if where is not None and where.startswith("local"):
                # long ALS runs cut their lineage at checkpoints (Spark's checkpointInterval)
                session.sparkContext.setCheckpointDir(scratch)
            yield session
        finally:
            session.stop()


def _factor_rows(factors: Any, n: int, rank: int) -> np.ndarray:
    """Spark's factor table (id: index, features: list of `rank` floats) as a float32
    (n, rank) array in index order; indices with no row (no training ratings) stay zero."""
    table = factors.toArrow()
    ids = table.column("id").to_numpy().astype(np.int64)
    values = table.column("features").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    out = np.zeros((n, rank), dtype=np.float32)
    out[ids] = np.asarray(values, dtype=np.float32).reshape(len(ids), rank)
    return out


class SparkALS(_ImplicitFactorModel):
    """ALS fitted by Apache Spark MLlib (`pyspark.ml.recommendation.ALS`), on one machine or a cluster.

    Score of user u for movie i: ``user_embeddings_[u] @ item_embeddings_[i]``.

    Args:
        factors: latent dimension (Spark's `rank`).
        regularization: Spark's `regParam`, scaled by each user's (movie's) number of
            ratings (ALS-WR), so smaller than `als`'s for the same effect (see the module
            docstring).
        alpha: confidence slope (implicit mode); an interaction's confidence is ``1 + alpha * r``.
        iterations: ALS sweeps (Spark's `maxIter`).
        values: "ones" (r = 1 for every rating) or "rating" (r = the star rating).
        implicit_prefs: True: implicit-feedback ALS (a ranking model, as `als`); False:
            Spark's explicit ALS on the star ratings (needs values="rating"), which ranks
            movies by predicted rating.
        seed: seed of Spark's factor initialisation.
        master: Spark master URL; None: spark-submit's, else `$MOVIEREC_SPARK_MASTER`,
            else "local[2]".
        driver_memory: the Spark driver's memory ("1g", "512m"), applied when fit starts
            Spark's JVM (the first session of a process; spark-submit sets its own).

    Fitted attributes:
        user_embeddings_: float32, shape (n_users, factors); zeros for users without
            training ratings.
        item_embeddings_: float32, shape (n_items, factors); zeros for movies without
            training ratings.
    """

    name: ClassVar[str] = "als-spark"
    capabilities = Capabilities(embeddings=True, similar_items=True, fold_in=True)
    search_space = {
        "factors": Categorical([32, 64, 128]),
        "regularization": Float(1e-3, 1.0, log=True),
        "alpha": Float(0.1, 100.0, log=True),
        "iterations": Int(5, 30),
    }

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        values: str = "ones",
        implicit_prefs: bool = True,
        seed: int = 42,
        master: str | None = None,
        driver_memory: str = "1g",
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.values = values
        self.implicit_prefs = implicit_prefs
        self.seed = seed
        self.master = master
        self.driver_memory = driver_memory

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """Bytes a fit needs on this machine: what every fit keeps; the driver JVM's heap
        when fit starts one (`driver_memory`; spark-submit's JVM is already running); the
        interactions as a CSR and as Arrow columns (12 bytes each); the factors read back
        (float32, twice: Arrow and numpy). Executors on a cluster need their own memory."""
        jvm = 0 if _under_spark_submit() else parse_driver_memory(self.driver_memory)
        return (jvm + base_fit_bytes(n_users, n_ratings) + csr_bytes(n_users, n_ratings) + 12 * int(n_ratings)
                + 2 * 4 * int(self.factors) * (int(n_users) + int(n_items)))

    def _check_params(self) -> None:
        if (isinstance(self.factors, bool) or not isinstance(self.factors, (int, np.integer)) or self.factors < 1
                or isinstance(self.iterations, bool) or not isinstance(self.iterations, (int, np.integer))
                or self.iterations < 1 or not self.regularization >= 0 or not self.alpha >= 0):
            raise ConfigError("als-spark needs whole numbers factors >= 1 and iterations >= 1, regularization >= 0 "
                              "and alpha >= 0.")
        if self.values not in _VALUES:
            raise ConfigError(f"values must be one of {', '.join(_VALUES)}, got {self.values!r}.")
        if not isinstance(self.implicit_prefs, bool):
            raise ConfigError(f"implicit_prefs must be true or false, got {self.implicit_prefs!r}.")
        if not self.implicit_prefs and self.values != "rating":
            raise ConfigError("Explicit ALS (implicit_prefs=False) fits the star ratings: set values='rating'.")
        resolve_master(self.master)
        parse_driver_memory(self.driver_memory)

    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        self._check_params()
        X = _interaction_matrix(train, self.values)  # users x movies, each pair once
        rank = int(self.factors)
        with progress_task("training als-spark", total=3, unit="step") as task:
            task.update(text="starting Spark")
            with warnings.catch_warnings():
                # pyspark warns about the pandas release on import; no pandas is used here
                warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark\.")
                with spark_session(self.master, self.driver_memory) as spark:
                    import pyarrow as pa
                    from pyspark.ml.recommendation import ALS as SparkALSEstimator

                    task.update(done=1, text="sending the ratings")
                    table = pa.table({
                        "user": np.repeat(np.arange(X.shape[0], dtype=np.int32), np.diff(X.indptr)),
                        "item": X.indices.astype(np.int32),
                        "rating": X.data.astype(np.float32),
                    })
                    ratings = spark.createDataFrame(table)
                    del table
                    estimator = SparkALSEstimator(
                        rank=rank, maxIter=int(self.iterations), regParam=float(self.regularization),
                        implicitPrefs=bool(self.implicit_prefs), alpha=float(self.alpha),
                        userCol="user", itemCol="item", ratingCol="rating", seed=int(self.seed),
                        coldStartStrategy="nan")
                    task.update(done=2, text=f"fitting {self.iterations} sweeps")
                    fitted = estimator.fit(ratings)
                    self.user_embeddings_ = _factor_rows(fitted.userFactors, train.n_users, rank)
                    self.item_embeddings_ = _factor_rows(fitted.itemFactors, train.n_items, rank)
                    task.update(done=3)
        self._check_shapes(train)

    def _similarity_vectors(self) -> np.ndarray:
        return self.item_embeddings_

    def _fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None,
                 liked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A new person's vector by Spark's own user solve, movie factors fixed.

        Implicit mode: ``(Y^T Y + alpha Y_u^T R_u Y_u + lambda n_u I) x = Y_u^T (1 + alpha r_u)``;
        explicit mode: ``(Y_u^T Y_u + lambda n_u I) x = Y_u^T r_u``; n_u is the number of
        movies given (Spark's ALS-WR scaling), r_u as in training (`_liked_values`).

        No `dislikes`: as `als`, the base hands over the liked movies only.

        Returns:
            (scores ``Y @ x``, shape (n_items,), x, shape (factors,)).
        """
        r = self._liked_values(ratings, len(item_idx))
        Y = self.item_embeddings_.astype(np.float64)
        reg = float(self.regularization) * len(item_idx)
        if self.implicit_prefs:
            x = implicit_user_vector(Y, Y.T @ Y, item_idx, r, float(self.alpha), reg)
        else:
            Yu = Y[item_idx]
            x = np.linalg.solve(Yu.T @ Yu + reg * np.eye(Y.shape[1]), Yu.T @ r)
        x = x.astype(np.float32)
        return self.item_embeddings_ @ x, x


__all__ = ["DEFAULT_MASTER", "MASTER_ENV", "SparkALS", "java_problem", "parse_driver_memory", "resolve_master",
           "spark_session"]
