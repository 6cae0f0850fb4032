//! Workflows (issue 4 items 3, 6, 7; ADR 0020): definitions and enrollments in the original's
//! shape, static validation, conditions compiled to the query language, and an engine that runs
//! every step as a job of the durable queue, so a workflow fires once per trigger event and
//! resumes after a restart.

pub mod actions;
pub mod conditions;
pub mod engine;
pub mod model;
pub mod template;
pub mod timing;
pub mod validate;

pub use model::{
    EnrollmentStatus, EntityType, WORKFLOW, WORKFLOW_ENROLLMENT, Workflow, WorkflowEnrollment,
    WorkflowEnrollmentId, WorkflowId,
};

use std::sync::Arc;

use crate::runtime::{Ports, Runtime};

pub use actions::{LogWorkflowMailer, NoSequences, RecordingWorkflowMailer, WorkflowPorts};
pub use engine::{Engine, StepHandler, WorkflowConsumer};

/// Registers the step handler and the event consumer with the runtime's ports (mails logged,
/// no sequences until their engine plugs in).
pub fn register(rt: &Runtime, ports: &Ports) -> Engine {
    register_with(
        rt,
        WorkflowPorts {
            mailer: Arc::new(LogWorkflowMailer),
            http: ports.http.clone(),
            sequences: Arc::new(NoSequences),
        },
    )
}

/// [`register`] with ports of the caller's choosing (tests record mails and calls).
pub fn register_with(rt: &Runtime, ports: WorkflowPorts) -> Engine {
    let engine = Engine::new(rt.stores().clone(), rt.clock().clone(), rt.queue(), ports);
    rt.register_handler(Arc::new(StepHandler(engine.clone())));
    rt.register_consumer(Arc::new(WorkflowConsumer(engine.clone())));
    engine
}

#[cfg(test)]
mod tests;
