//! The durable queue's work: which event makes which job (`plan`, pure), and the worker
//! pool that claims, runs and settles jobs (`worker`). Each job kind is a file of its own;
//! a review job hands the making of the review to `review::pipeline` and posts the result.

mod check_run;
mod ci_tests;
mod command;
mod config_answer;
mod error;
mod first_review_tests;
mod gate;
mod incremental;
mod learn;
mod notes;
mod plan;
mod publish;
mod reply;
mod repo_settings;
mod review_pr;
mod task_request;
mod test_threads;
mod worker;

pub use error::{JobError, Outcome};
pub use plan::{CommandJob, Job, PrRef, ReplyJob, Requester, ReviewJob, plan, plan_with};
pub use worker::{retry_delay, run_workers, worker_runtime};
