#!/usr/bin/env bash
# The Spark image's entrypoint (serving/Dockerfile.spark): what a driver or an executor pod runs.
#
# Spark on Kubernetes starts every pod of an application from one image and says through the
# container's arguments what the pod is for; it never sets the command, so this script sees:
#
#   driver --properties-file /opt/spark/conf/spark.properties --class <main class> <app> [args]
#       The driver pod that spark-submit (spark-operator's, or yours with --deploy-mode cluster)
#       created. spark-submit runs again here, in client mode: the driver runs in this pod and
#       listens on the pod's address, SPARK_DRIVER_BIND_ADDRESS (Spark sets it to the pod's IP).
#   executor
#       An executor pod that the driver created. Everything else comes in SPARK_* variables:
#       SPARK_DRIVER_URL, SPARK_EXECUTOR_ID, SPARK_EXECUTOR_CORES, SPARK_EXECUTOR_MEMORY,
#       SPARK_APPLICATION_ID, SPARK_EXECUTOR_POD_IP, SPARK_EXECUTOR_POD_NAME,
#       SPARK_RESOURCE_PROFILE_ID, the JVM's options one per SPARK_JAVA_OPT_<n> (in n's order),
#       SPARK_CLASSPATH (spark.executor.extraClassPath) and SPARK_CONF_DIR (Spark's mounted
#       configuration). The executor is a JVM started here directly, as Spark's own image does.
#   anything else
#       Run as given: `docker run <image> modelops-score --help`, `... bash`.
#
# Spark itself comes from the pyspark wheel in the locked environment: SPARK_HOME is its package
# folder (jars/, bin/spark-submit), set by the Dockerfile. Java is $JAVA_HOME/bin/java, else
# `java` on PATH. tini is PID 1 and starts this script (the Dockerfile's ENTRYPOINT): the process
# exec'd here gets Kubernetes' SIGTERM from it, and orphaned processes are reaped.
set -euo pipefail

say() {
    echo "spark-entrypoint: $*" >&2
}

java_command() {
    if [[ -n "${JAVA_HOME:-}" ]]; then
        echo "$JAVA_HOME/bin/java"
    else
        echo java
    fi
}

# Hadoop's login (under Spark's file system layer) looks up the user's name: a uid with no entry
# in /etc/passwd fails there, and the root filesystem is read-only in these pods, so no entry
# can be added now. The image has one for deploy.run_as_user; say so early for any other uid.
check_user() {
    local uid
    uid="$(id -u)"
    if ! getent passwd "$uid" > /dev/null; then
        say "warning: uid $uid has no entry in /etc/passwd, and Hadoop's login may fail" \
            "('invalid null input: name'): run as the image's user (deploy.run_as_user), or" \
            "rebuild the image with --build-arg RUN_AS_USER=$uid"
    fi
}

# The SPARK_JAVA_OPT_<n> values, in the order of n (numbers, not text: 2 before 10), each one
# JVM argument as it is (spaces included).
java_options() {
    local name
    while IFS= read -r name; do
        [[ -n "$name" ]] && printf '%s\0' "${!name}"
    done < <(compgen -e | sed -n 's/^SPARK_JAVA_OPT_\([0-9][0-9]*\)$/\1 &/p' | sort -n | cut -d' ' -f2)
}

# Spark's configuration folder first (its log4j2 settings), then Hadoop's, then the user's extra
# classpath, then Spark's own jars.
executor_classpath() {
    local parts=()
    [[ -n "${SPARK_CONF_DIR:-}" ]] && parts+=("$SPARK_CONF_DIR")
    [[ -n "${HADOOP_CONF_DIR:-}" ]] && parts+=("$HADOOP_CONF_DIR")
    [[ -n "${SPARK_CLASSPATH:-}" ]] && parts+=("$SPARK_CLASSPATH")
    parts+=("$SPARK_HOME/jars/*")
    [[ -n "${SPARK_DIST_CLASSPATH:-}" ]] && parts+=("$SPARK_DIST_CLASSPATH")
    local IFS=:
    echo "${parts[*]}"
}

run_driver() {
    if [[ -z "${SPARK_DRIVER_BIND_ADDRESS:-}" ]]; then
        say "SPARK_DRIVER_BIND_ADDRESS is not set: Spark sets it to the driver pod's IP address"
        exit 64
    fi
    exec spark-submit \
        --deploy-mode client \
        --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" \
        "$@"
}

run_executor() {
    if [[ -z "${SPARK_HOME:-}" ]]; then
        say "SPARK_HOME is not set: the image sets it to the pyspark package's folder"
        exit 64
    fi
    local required
    for required in SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES \
        SPARK_EXECUTOR_MEMORY SPARK_APPLICATION_ID SPARK_EXECUTOR_POD_IP; do
        if [[ -z "${!required:-}" ]]; then
            say "$required is not set: an executor pod gets it from the driver that created it"
            exit 64
        fi
    done
    local options=()
    mapfile -d '' -t options < <(java_options)
    local backend=(
        --driver-url "$SPARK_DRIVER_URL"
        --executor-id "$SPARK_EXECUTOR_ID"
        --cores "$SPARK_EXECUTOR_CORES"
        --app-id "$SPARK_APPLICATION_ID"
        --hostname "$SPARK_EXECUTOR_POD_IP"
        --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}"
    )
    [[ -n "${SPARK_EXECUTOR_POD_NAME:-}" ]] && backend+=(--podName "$SPARK_EXECUTOR_POD_NAME")
    exec "$(java_command)" \
        "${options[@]}" \
        "-Xms$SPARK_EXECUTOR_MEMORY" "-Xmx$SPARK_EXECUTOR_MEMORY" \
        -cp "$(executor_classpath)" \
        org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
        "${backend[@]}"
}

if [[ $# -eq 0 ]]; then
    say "give a mode: driver ARGS... or executor (as Spark on Kubernetes does), or a command to run"
    exit 64
fi
case "$1" in
    driver)
        shift
        check_user
        run_driver "$@"
        ;;
    executor)
        shift
        check_user
        run_executor
        ;;
    *)
        exec "$@"
        ;;
esac
