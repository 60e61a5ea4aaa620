#![no_std]
pub mod sys;
