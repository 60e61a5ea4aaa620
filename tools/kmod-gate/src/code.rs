//! Checks that need the machine code: FPU/SIMD register use, decodability,
//! indirect branches, frame-pointer prologues and stack frame sizes.

use iced_x86::{
    Decoder, DecoderOptions, FlowControl, Formatter, GasFormatter, Instruction,
    InstructionInfoFactory, Mnemonic, OpKind, Register,
};
use object::elf;

use crate::report::{Frame, Report, Rule};
use crate::{Options, Section, Symbol, demangle};

/// The byte fbt looks for at the start of an instruction: `push %rbp`.
const PUSH_RBP: u8 = 0x55;

/// A function to examine: its place in its section and its name.
struct Function<'a> {
    name: &'a str,
    start: usize,
    end: usize,
}

pub(crate) fn check_code(
    sections: &[Section<'_>],
    symbols: &[Symbol],
    options: &Options,
    report: &mut Report,
) {
    let mut factory = InstructionInfoFactory::new();
    let mut formatter = GasFormatter::new();
    for section in sections
        .iter()
        .filter(|s| s.is_alloc() && s.is_exec() && s.kind == elf::SHT_PROGBITS)
    {
        let functions = functions_in(section, symbols, report);
        sweep_section(section, &functions, &mut factory, &mut formatter, report);
        for function in &functions {
            check_function(section, function, options, report);
        }
    }
}

/// The STT_FUNC symbols of nonzero size defined in `section`, sorted by
/// start offset.
fn functions_in<'a>(
    section: &Section<'_>,
    symbols: &'a [Symbol],
    report: &mut Report,
) -> Vec<Function<'a>> {
    let mut out = Vec::new();
    for symbol in symbols {
        if symbol.kind != elf::STT_FUNC || symbol.size == 0 || symbol.section != Some(section.index)
        {
            continue;
        }
        // In a relocatable object st_value is an offset into the section.
        let range = Some(symbol.value).and_then(|start| {
            let end = start.checked_add(symbol.size)?;
            let (start, end) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
            (end <= section.data.len()).then_some((start, end))
        });
        match range {
            Some((start, end)) => out.push(Function {
                name: &symbol.name,
                start,
                end,
            }),
            None => report.push(
                Rule::Malformed,
                format!("`{}`", demangle(&symbol.name)),
                format!("function lies outside its section {}", section.name),
            ),
        }
    }
    out.sort_by_key(|f| f.start);
    out
}

/// Name of the function containing `offset`, for messages.
fn containing<'a>(functions: &'a [Function<'_>], offset: usize) -> Option<&'a str> {
    functions
        .iter()
        .rev()
        .find(|f| f.start <= offset && offset < f.end)
        .map(|f| f.name)
}

fn location(section: &Section<'_>, functions: &[Function<'_>], offset: usize) -> String {
    match containing(functions, offset) {
        Some(name) => format!("{}+{:#x} in `{}`", section.name, offset, demangle(name)),
        None => format!("{}+{:#x}", section.name, offset),
    }
}

/// Whether `reg` belongs to the x87, MMX, SSE, AVX or AVX-512/AMX state.
fn is_fpu_or_vector(reg: Register) -> bool {
    reg.is_xmm()
        || reg.is_ymm()
        || reg.is_zmm()
        || reg.is_mm()
        || reg.is_st()
        || reg.is_k()
        || reg.is_tmm()
}

/// Decodes the whole section, one instruction after the other, restarting
/// at each function start, and reports every instruction that uses an
/// FPU/vector register (explicitly or implicitly), every indirect jump or
/// call, and every byte sequence that is not a valid instruction.
fn sweep_section(
    section: &Section<'_>,
    functions: &[Function<'_>],
    factory: &mut InstructionInfoFactory,
    formatter: &mut GasFormatter,
    report: &mut Report,
) {
    let data = section.data;
    let mut starts: Vec<usize> = functions.iter().map(|f| f.start).collect();
    starts.dedup();
    let mut next_start = starts.iter().copied().peekable();
    let mut decoder = Decoder::with_ip(64, data, 0, DecoderOptions::NONE);
    let mut instruction = Instruction::default();
    let mut offset = 0usize;
    while offset < data.len() {
        while next_start.peek().is_some_and(|&s| s <= offset) {
            next_start.next();
        }
        decoder.set_ip(offset as u64);
        if decoder.set_position(offset).is_err() {
            break;
        }
        decoder.decode_out(&mut instruction);
        let mut next = offset + instruction.len().max(1);
        if let Some(&boundary) = next_start.peek()
            && boundary < next
        {
            // An instruction cannot run into the next function: resync there.
            next = boundary;
        }
        if instruction.is_invalid() {
            report.push(
                Rule::Undecodable,
                location(section, functions, offset),
                format!(
                    "byte {:#04x} does not start a valid x86-64 instruction",
                    data[offset]
                ),
            );
        } else {
            check_indirect_branch(section, functions, offset, &instruction, formatter, report);
            let info = factory.info(&instruction);
            let uses: Vec<Register> = info
                .used_registers()
                .iter()
                .map(|u| u.register())
                .chain(explicit_registers(&instruction))
                .filter(|&r| is_fpu_or_vector(r))
                .collect();
            if let Some(reg) = uses.first() {
                let mut text = String::new();
                formatter.format(&instruction, &mut text);
                report.push(
                    Rule::Simd,
                    location(section, functions, offset),
                    format!(
                        "`{text}` uses {reg:?}: kernel code must not touch x87/MMX/SSE/AVX state"
                    ),
                );
            }
        }
        offset = next;
    }
}

/// Reports `instruction` if it jumps or calls through a register or memory
/// (a jump table's `jmp *table(,%reg,8)`, a call through a function
/// pointer): illumos's kernel is built with `-mindirect-branch=thunk-extern
/// -mindirect-branch-register`, and a module must be too (LLVM's
/// `retpoline-external-thunk` features, in the target spec), so that every
/// indirect branch goes through a `__x86_indirect_thunk_<reg>` -- a direct
/// call or jump, which the kernel patches to suit the CPU.
fn check_indirect_branch(
    section: &Section<'_>,
    functions: &[Function<'_>],
    offset: usize,
    instruction: &Instruction,
    formatter: &mut GasFormatter,
    report: &mut Report,
) {
    if !matches!(
        instruction.flow_control(),
        FlowControl::IndirectBranch | FlowControl::IndirectCall
    ) {
        return;
    }
    let mut text = String::new();
    formatter.format(instruction, &mut text);
    report.push(
        Rule::IndirectBranch,
        location(section, functions, offset),
        format!(
            "`{text}` branches indirectly: without a retpoline it is open to branch target \
             injection (Spectre v2); build with retpoline-external-thunk so that it goes \
             through __x86_indirect_thunk_<reg>"
        ),
    );
}

/// The registers named by the operands (register and memory operands).
fn explicit_registers(instruction: &Instruction) -> Vec<Register> {
    let mut regs = Vec::new();
    for op in 0..instruction.op_count() {
        match instruction.op_kind(op) {
            OpKind::Register => regs.push(instruction.op_register(op)),
            OpKind::Memory => {
                regs.push(instruction.memory_base());
                regs.push(instruction.memory_index());
            }
            _ => {}
        }
    }
    regs
}

/// Frame-pointer and stack-frame checks for one function.
fn check_function(
    section: &Section<'_>,
    function: &Function<'_>,
    options: &Options,
    report: &mut Report,
) {
    let body = &section.data[function.start..function.end];
    let name = demangle(function.name);
    report.figures.functions += 1;

    let mut decoder = Decoder::with_ip(64, body, function.start as u64, DecoderOptions::NONE);
    let mut instructions = Vec::new();
    while decoder.can_decode() {
        let instruction = decoder.decode();
        if instruction.is_invalid() {
            break;
        }
        instructions.push(instruction);
    }

    // fbt walks the function instruction by instruction and puts its entry
    // probe on the first `push %rbp` it finds, wherever it is.
    let push_rbp = instructions
        .iter()
        .position(|i| body[(i.ip() as usize) - function.start] == PUSH_RBP);
    if push_rbp.is_none() {
        report.push(
            Rule::FramePointer,
            format!("{}+{:#x} `{name}`", section.name, function.start),
            "no `push %rbp` (0x55) anywhere in the function: no frame pointer, and \
             DTrace fbt cannot probe it",
        );
    }

    let frame = measure_prologue(&instructions[push_rbp.unwrap_or(0)..], name.clone());
    if frame.bytes() > options.max_frame {
        report.push(
            Rule::StackFrame,
            format!("{}+{:#x} `{name}`", section.name, function.start),
            format!(
                "prologue stack frame of {} B ({} B pushed + {} B allocated) exceeds the \
                 {} B limit",
                frame.bytes(),
                frame.pushed,
                frame.allocated,
                options.max_frame
            ),
        );
    }
    let larger = match &report.figures.largest_frame {
        Some(current) => frame.bytes() > current.bytes(),
        None => true,
    };
    if larger {
        report.figures.largest_frame = Some(frame);
    }
}

fn imm(instruction: &Instruction, operand: u32) -> Option<i64> {
    match instruction.op_kind(operand) {
        OpKind::Immediate8
        | OpKind::Immediate8to16
        | OpKind::Immediate8to32
        | OpKind::Immediate8to64
        | OpKind::Immediate16
        | OpKind::Immediate32
        | OpKind::Immediate32to64
        | OpKind::Immediate64 => Some(instruction.immediate(operand) as i64),
        _ => None,
    }
}

fn is_reg(instruction: &Instruction, operand: u32, reg: Register) -> bool {
    instruction.op_kind(operand) == OpKind::Register && instruction.op_register(operand) == reg
}

/// Adds up the stack a prologue reserves, from its first instruction (the
/// first `push %rbp`) to the first control transfer (call, jump, return)
/// or the first instruction that changes `rsp` in a way it cannot follow.
/// Counted: pushes (8 B each), immediate subtractions from `rsp` (`sub`,
/// negative `add`, `lea rsp,[rsp-n]`), worst-case realignment (`and rsp,-n`
/// counts n-8) and a stack-probe loop's bound (`mov r11,rsp; sub r11,n`
/// counts n and ends the prologue). Instructions that leave `rsp` alone
/// (compilers schedule argument set-up into prologues) are stepped over;
/// pops are not subtracted, so the figure errs on the large side.
fn measure_prologue(instructions: &[Instruction], function: String) -> Frame {
    let mut frame = Frame {
        function,
        pushed: 0,
        allocated: 0,
        probed: false,
    };
    let mut probe_base = false;
    for i in instructions {
        if i.flow_control() != FlowControl::Next {
            break;
        }
        match i.mnemonic() {
            Mnemonic::Push => frame.pushed += 8,
            Mnemonic::Mov if is_reg(i, 0, Register::R11) && is_reg(i, 1, Register::RSP) => {
                probe_base = true;
            }
            Mnemonic::Sub if probe_base && is_reg(i, 0, Register::R11) => {
                if let Some(n) = imm(i, 1) {
                    frame.allocated += n.unsigned_abs();
                    frame.probed = true;
                }
                break;
            }
            Mnemonic::Sub if is_reg(i, 0, Register::RSP) => match imm(i, 1) {
                Some(n) if n > 0 => frame.allocated += n as u64,
                _ => break,
            },
            Mnemonic::Add if is_reg(i, 0, Register::RSP) => match imm(i, 1) {
                Some(n) if n < 0 => frame.allocated += n.unsigned_abs(),
                _ => break,
            },
            Mnemonic::Lea
                if is_reg(i, 0, Register::RSP)
                    && i.memory_base() == Register::RSP
                    && i.memory_index() == Register::None =>
            {
                let displacement = i.memory_displacement64() as i64;
                if displacement < 0 {
                    frame.allocated += displacement.unsigned_abs();
                } else {
                    break;
                }
            }
            Mnemonic::And if is_reg(i, 0, Register::RSP) => match imm(i, 1) {
                Some(n) if n < 0 => frame.allocated += n.unsigned_abs().saturating_sub(8),
                _ => break,
            },
            Mnemonic::Pop => {}
            // Anything else that writes rsp: stop rather than guess.
            _ if is_reg(i, 0, Register::RSP) => break,
            _ => {}
        }
    }
    frame
}
