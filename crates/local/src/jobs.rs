//! Local IoT Jobs: job templates, jobs for things and thing groups, one execution per target
//! device with its status and details, and a notify-next event per queued execution.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use wme_workflow::JobExecutionStatus;
use wme_workflow::model::TargetArn;
use wme_workflow::ports::{JobCreated, JobExecutionUpdate, JobTemplate, Jobs, NewJob, PortError};

use crate::registry::Registry;

/// The message AWS IoT publishes on `$aws/things/<thing>/jobs/notify-next`, with the thing
/// name added the way the rule's `topic(3) AS thingName` adds it.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyNext {
    /// The device.
    pub thing_name: String,
    /// The job.
    pub job_id: String,
    /// The rule's output: the state machine's input.
    pub event: Value,
}

/// One device's execution of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobExecution {
    /// The device.
    pub thing_name: String,
    /// Its status.
    pub status: JobExecutionStatus,
    /// Details.
    pub status_details: BTreeMap<String, String>,
    /// Incremented on each update.
    pub version_number: u64,
    /// When queued.
    pub queued_at: DateTime<Utc>,
    /// When last updated.
    pub last_updated_at: DateTime<Utc>,
}

/// A job's overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Some executions are not terminal.
    InProgress,
    /// All executions are terminal.
    Completed,
}

/// A summary of a job, as DescribeJob's `jobProcessDetails` gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    /// The job.
    pub job_id: String,
    /// Overall status.
    pub status: JobStatus,
    /// Executions by status.
    pub counts: BTreeMap<JobExecutionStatus, usize>,
    /// Number of executions.
    pub total: usize,
}

#[derive(Debug)]
struct Job {
    executions: HashMap<String, JobExecution>,
    counts: HashMap<JobExecutionStatus, usize>,
}

#[derive(Debug, Default)]
struct Inner {
    templates: HashMap<String, JobTemplate>,
    jobs: HashMap<String, Job>,
}

/// The job service.
pub struct LocalJobs {
    registry: Arc<Registry>,
    region: String,
    account: String,
    /// One lock for jobs and templates: every call is short and never awaits while holding it.
    inner: Mutex<Inner>,
    /// Unbounded so creating a job for 10,000 devices never blocks on the rule that consumes it.
    notify_next: mpsc::UnboundedSender<NotifyNext>,
    /// Bumped on every execution update, for progress displays.
    changes: watch::Sender<u64>,
}

impl LocalJobs {
    /// A job service whose notify-next events go to `notify_next`.
    pub fn new(
        registry: Arc<Registry>,
        region: &str,
        account: &str,
        notify_next: mpsc::UnboundedSender<NotifyNext>,
    ) -> Self {
        Self {
            registry,
            region: region.into(),
            account: account.into(),
            inner: Mutex::new(Inner::default()),
            notify_next,
            changes: watch::channel(0).0,
        }
    }

    /// Creates or replaces a job template.
    pub fn put_job_template(&self, id: &str, document: Value, description: &str) {
        let template = JobTemplate {
            id: id.into(),
            arn: format!(
                "arn:aws:iot:{}:{}:jobtemplate/{id}",
                self.region, self.account
            ),
            document,
            description: description.into(),
        };
        self.inner
            .lock()
            .expect("jobs lock")
            .templates
            .insert(id.into(), template);
    }

    /// A receiver that changes whenever an execution changes.
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The job's summary.
    pub fn describe_job(&self, job_id: &str) -> Option<JobSummary> {
        let inner = self.inner.lock().expect("jobs lock");
        let job = inner.jobs.get(job_id)?;
        let counts: BTreeMap<JobExecutionStatus, usize> = job
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| (*s, *n))
            .collect();
        let total = job.executions.len();
        let terminal: usize = counts
            .iter()
            .filter(|(s, _)| s.is_terminal())
            .map(|(_, n)| n)
            .sum();
        let status = if terminal == total {
            JobStatus::Completed
        } else {
            JobStatus::InProgress
        };
        Some(JobSummary {
            job_id: job_id.into(),
            status,
            counts,
            total,
        })
    }

    /// One execution.
    pub fn describe_job_execution(&self, job_id: &str, thing_name: &str) -> Option<JobExecution> {
        let inner = self.inner.lock().expect("jobs lock");
        inner.jobs.get(job_id)?.executions.get(thing_name).cloned()
    }

    /// All executions of a job, by thing name.
    pub fn list_job_executions(&self, job_id: &str) -> Vec<JobExecution> {
        let inner = self.inner.lock().expect("jobs lock");
        let mut all: Vec<JobExecution> = inner
            .jobs
            .get(job_id)
            .map(|job| job.executions.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.thing_name.cmp(&b.thing_name));
        all
    }

    fn resolve_targets(&self, targets: &[TargetArn]) -> Result<Vec<String>, PortError> {
        let mut things = Vec::new();
        for target in targets {
            match target {
                TargetArn::Thing { name, .. } => {
                    self.registry
                        .describe_thing(name)
                        .map_err(|_| PortError::NotFound {
                            kind: "thing",
                            name: target.arn().into(),
                        })?;
                    things.push(name.clone());
                }
                TargetArn::ThingGroup { name, .. } => {
                    let members =
                        self.registry
                            .group_members(name)
                            .map_err(|_| PortError::NotFound {
                                kind: "thing group",
                                name: target.arn().into(),
                            })?;
                    things.extend(members);
                }
            }
        }
        things.sort();
        things.dedup();
        Ok(things)
    }

    fn notify_event(&self, job_id: &str, document: &Value, execution: &JobExecution) -> NotifyNext {
        let queued = execution.queued_at.timestamp();
        let event = json!({
            "thingName": execution.thing_name,
            "timestamp": queued,
            "execution": {
                "jobId": job_id,
                "status": "QUEUED",
                "queuedAt": queued,
                "lastUpdatedAt": queued,
                "versionNumber": 1,
                "executionNumber": 1,
                "jobDocument": document,
            },
        });
        NotifyNext {
            thing_name: execution.thing_name.clone(),
            job_id: job_id.into(),
            event,
        }
    }
}

#[async_trait]
impl Jobs for LocalJobs {
    async fn job_template(&self, template_id: &str) -> Result<JobTemplate, PortError> {
        let inner = self.inner.lock().expect("jobs lock");
        inner
            .templates
            .get(template_id)
            .cloned()
            .ok_or_else(|| PortError::NotFound {
                kind: "job template",
                name: template_id.into(),
            })
    }

    async fn create_job(&self, job: NewJob) -> Result<JobCreated, PortError> {
        let things = self.resolve_targets(&job.targets)?;
        let now = Utc::now();
        let executions: HashMap<String, JobExecution> = things
            .iter()
            .map(|thing| {
                let execution = JobExecution {
                    thing_name: thing.clone(),
                    status: JobExecutionStatus::Queued,
                    status_details: BTreeMap::new(),
                    version_number: 1,
                    queued_at: now,
                    last_updated_at: now,
                };
                (thing.clone(), execution)
            })
            .collect();
        let arn = format!(
            "arn:aws:iot:{}:{}:job/{}",
            self.region, self.account, job.job_id
        );
        let events: Vec<NotifyNext> = things
            .iter()
            .map(|thing| self.notify_event(&job.job_id, &job.document, &executions[thing]))
            .collect();
        {
            let mut inner = self.inner.lock().expect("jobs lock");
            if inner.jobs.contains_key(&job.job_id) {
                return Err(PortError::Conflict(format!(
                    "job `{}` already exists",
                    job.job_id
                )));
            }
            let counts = HashMap::from([(JobExecutionStatus::Queued, executions.len())]);
            let stored = Job { executions, counts };
            inner.jobs.insert(job.job_id.clone(), stored);
        }
        for event in events {
            if self.notify_next.send(event).is_err() {
                return Err(PortError::Unavailable(
                    "the notify-next rule is not running".into(),
                ));
            }
        }
        Ok(JobCreated {
            job_id: job.job_id,
            job_arn: arn,
        })
    }

    async fn update_job_execution(&self, update: JobExecutionUpdate) -> Result<(), PortError> {
        {
            let mut inner = self.inner.lock().expect("jobs lock");
            let job = inner
                .jobs
                .get_mut(&update.job_id)
                .ok_or_else(|| PortError::NotFound {
                    kind: "job",
                    name: update.job_id.clone(),
                })?;
            let execution =
                job.executions
                    .get_mut(&update.thing_name)
                    .ok_or_else(|| PortError::NotFound {
                        kind: "job execution",
                        name: format!("{}/{}", update.job_id, update.thing_name),
                    })?;
            if execution.status.is_terminal() {
                return Err(PortError::Conflict(format!(
                    "execution of job `{}` on `{}` is already {}",
                    update.job_id, update.thing_name, execution.status
                )));
            }
            let old = execution.status;
            execution.status = update.status;
            execution.status_details.extend(update.status_details);
            execution.version_number += 1;
            execution.last_updated_at = Utc::now();
            *job.counts.entry(old).or_default() -= 1;
            *job.counts.entry(update.status).or_default() += 1;
        }
        self.changes.send_modify(|n| *n += 1);
        Ok(())
    }
}

impl std::fmt::Debug for LocalJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalJobs")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl JobSummary {
    /// Executions with this status.
    pub fn count(&self, status: JobExecutionStatus) -> usize {
        self.counts.get(&status).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (LocalJobs, mpsc::UnboundedReceiver<NotifyNext>) {
        let registry = Arc::new(Registry::new());
        for name in ["sim-0001", "sim-0002"] {
            let attrs = BTreeMap::from([("firmwareVersion".to_string(), "1.2.1".to_string())]);
            registry.create_thing(name, attrs).unwrap();
        }
        registry
            .create_dynamic_group("g", "attributes.firmwareVersion:1.2.1")
            .unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        (LocalJobs::new(registry, "local", "000000000000", tx), rx)
    }

    fn new_job(target: &str) -> NewJob {
        NewJob {
            job_id: "j1".into(),
            targets: vec![target.parse().unwrap()],
            document: json!({"firmwareVersion": "1.2.3"}),
            description: String::new(),
            target_selection: Default::default(),
            template_arn: String::new(),
        }
    }

    fn update(thing: &str, status: JobExecutionStatus) -> JobExecutionUpdate {
        JobExecutionUpdate {
            thing_name: thing.into(),
            job_id: "j1".into(),
            status,
            status_details: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn group_job_queues_one_execution_per_member_and_completes_when_all_are_terminal() {
        let (jobs, mut rx) = setup();
        jobs.create_job(new_job("arn:aws:iot:local:0:thinggroup/g"))
            .await
            .unwrap();
        let first = rx.recv().await.unwrap();
        assert_eq!(first.thing_name, "sim-0001");
        assert_eq!(
            first.event["execution"]["jobDocument"]["firmwareVersion"],
            "1.2.3"
        );
        assert_eq!(rx.recv().await.unwrap().thing_name, "sim-0002");

        jobs.update_job_execution(update("sim-0001", JobExecutionStatus::Succeeded))
            .await
            .unwrap();
        assert_eq!(
            jobs.describe_job("j1").unwrap().status,
            JobStatus::InProgress
        );
        jobs.update_job_execution(update("sim-0002", JobExecutionStatus::TimedOut))
            .await
            .unwrap();
        let summary = jobs.describe_job("j1").unwrap();
        assert_eq!(summary.status, JobStatus::Completed);
        assert_eq!(summary.count(JobExecutionStatus::TimedOut), 1);
        assert_eq!(summary.count(JobExecutionStatus::Queued), 0);
    }

    #[tokio::test]
    async fn terminal_execution_refuses_further_updates() {
        let (jobs, _rx) = setup();
        jobs.create_job(new_job("arn:aws:iot:local:0:thing/sim-0001"))
            .await
            .unwrap();
        jobs.update_job_execution(update("sim-0001", JobExecutionStatus::Failed))
            .await
            .unwrap();
        let err = jobs
            .update_job_execution(update("sim-0001", JobExecutionStatus::Succeeded))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            PortError::Conflict("execution of job `j1` on `sim-0001` is already FAILED".into())
        );
    }

    #[tokio::test]
    async fn unknown_group_is_not_found_by_arn() {
        let (jobs, _rx) = setup();
        let err = jobs
            .create_job(new_job("arn:aws:iot:local:0:thinggroup/nope"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            PortError::NotFound {
                kind: "thing group",
                name: "arn:aws:iot:local:0:thinggroup/nope".into()
            }
        );
    }
}
